"""The dashboard at phone width (390 px) in headless Chromium: every navigation entry through the menu,
the agent's test call near the top, tables as cards whose key cells (voice preview, Revoke, call status)
are on screen without scrolling sideways; a failed call's badge on the live page."""

import pytest

from calls.models import Call
from calls.services import call_initiate
from tenants.models import Membership
from tests import factories
from voiceapp.web.context_processors import NAVIGATION

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 390, "height": 844}
NOT_CONFIGURED = "No phone carrier is configured on this deployment, so the call was not placed"


@pytest.fixture
def owner_of(asgi_server):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    user = factories.UserFactory(username="dana")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return tenant, user


def phone_page(new_page, sign_in, user):
    return sign_in(new_page(**PHONE), user)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def on_screen_horizontally(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_every_navigation_entry_is_reachable_through_the_menu(new_page, sign_in, owner_of, asgi_server):
    _, user = owner_of
    page = phone_page(new_page, sign_in, user)
    labels = [label for _, label, _ in NAVIGATION]

    for label in labels:
        page.goto("/")
        nav = page.get_by_test_id("main-nav")
        expect(nav).to_be_hidden()  # folded away: the strip no longer cuts off after "Live"
        page.get_by_test_id("nav-toggle").click()
        link = nav.get_by_role("link", name=label, exact=True)
        expect(link).to_be_visible()
        assert on_screen_horizontally(link), label
        link.click()
        expect(page.get_by_test_id("nav-toggle")).to_contain_text(label)  # the menu names the page it is on
    assert no_sideways_scroll(page)
    assert page.js_errors == []


def test_the_agents_test_call_is_near_the_top_on_a_phone(new_page, sign_in, owner_of):
    tenant, user = owner_of
    agent = factories.AgentFactory(tenant=tenant, name="Front Desk")
    page = phone_page(new_page, sign_in, user)

    page.goto(f"/agents/{agent.pk}/")

    expect(page.get_by_test_id("test-call-start")).to_be_in_viewport()  # above the fold, no scrolling
    panel = page.get_by_test_id("test-call").bounding_box()
    details = page.get_by_test_id("agent-detail").bounding_box()
    assert panel["y"] < details["y"]
    assert no_sideways_scroll(page)


def test_api_keys_show_revoke_and_status_without_scrolling_sideways(new_page, sign_in, owner_of):
    tenant, user = owner_of
    factories.ApiKeyFactory(tenant=tenant, name="CRM sync with a rather long descriptive name")
    page = phone_page(new_page, sign_in, user)

    page.goto("/developers/api-keys/")

    row = page.get_by_test_id("api-key-row")
    for cell in (row.get_by_test_id("api-key-revoke"), row.get_by_text("Active", exact=True)):
        expect(cell).to_be_visible()
        assert on_screen_horizontally(cell)
    assert no_sideways_scroll(page)


def test_voice_previews_are_on_screen_on_a_phone(new_page, sign_in, owner_of):
    _, user = owner_of
    factories.VoiceFactory(name="Default female", description="The platform's default voice.")
    page = phone_page(new_page, sign_in, user)

    page.goto("/voices/")

    preview = page.get_by_test_id("voice-preview")
    expect(preview).to_be_visible()
    assert on_screen_horizontally(preview)
    assert no_sideways_scroll(page)


def test_a_failed_call_is_red_with_its_reason_on_the_list_and_live_on_a_phone(new_page, sign_in, owner_of):
    tenant, user = owner_of
    call = factories.CallFactory(
        tenant=tenant, direction=Call.Direction.OUTBOUND, from_number="+15550000100", to_number="+15559870002"
    )
    call_initiate(call=call)  # no carrier here: the call ends at once
    page = phone_page(new_page, sign_in, user)

    page.goto("/calls/")
    status = page.get_by_test_id("calls-table").get_by_test_id("call-outcome")
    expect(status).to_have_text("Failed")
    expect(status).to_have_attribute("data-tone", "failed")
    assert on_screen_horizontally(status)
    expect(page.get_by_test_id("call-outcome-reason")).to_have_text(NOT_CONFIGURED)
    assert no_sideways_scroll(page)

    page.goto(f"/live/{call.pk}/")
    expect(page.get_by_test_id("live-connection")).to_have_class("live-dot on")  # the socket has spoken
    expect(page.locator("#watched-title")).to_contain_text("Call to +15559870002")
    expect(page.get_by_test_id("live-call-outcome")).to_have_text("Failed")
    expect(page.get_by_test_id("live-call-outcome-reason")).to_have_text(NOT_CONFIGURED)
    assert page.js_errors == []
