"""The dashboard in headless Chromium: sign in, create an agent, talk to it through the fake microphone,
follow the call live, read usage charts.

The test call runs the real pipeline on the offline engines (Silero VAD, faster-whisper, the offline
responder, piper) inside the live server: Chromium's fake microphone plays piper saying "When are
you open?" after some silence, and the agent answers from its FAQ. Waits are generous (small CI
machines); nothing asserts on time.
"""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from calls.models import Call, TranscriptTurn
from tenants.models import Membership
from tests import factories
from tests.voice.session_support import FAQ, make_agent

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect  # requirements-dev.txt; a skip without it

PASSWORD = "correct horse battery staple"  # UserFactory's
GREETING = "Acme Dental, how can I help?"
PROMPT = "You are the friendly receptionist of Acme Dental."
ANSWER = "Monday to Friday, 8 AM to 5 PM."  # FAQ's answer to "When are you open?"
CALL_WAIT_MS = 120_000  # model loading, speech recognition and synthesis on two slow cores


@pytest.fixture
def tenant_owner(asgi_server):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    user = factories.UserFactory(username="dana")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return tenant, user


def sign_in_with_form(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("form[action='/accounts/login/'] button[type=submit]").click()


def test_signing_in_through_the_form_lands_on_the_overview(new_page, tenant_owner, asgi_server):
    tenant, user = tenant_owner
    page = new_page()

    sign_in_with_form(page, user.username, PASSWORD)

    page.wait_for_url(f"{asgi_server.url}/")
    # The tenant and user this test created are what the server shows.
    expect(page.locator("main h1")).to_have_text(tenant.name)
    expect(page.locator(".user-menu summary")).to_contain_text(user.username)


def test_a_wrong_password_shows_the_error(new_page, tenant_owner, asgi_server):
    _, user = tenant_owner
    page = new_page()

    sign_in_with_form(page, user.username, "not the password")

    expect(page.locator(".form-errors")).to_contain_text("Please enter a correct username and password")
    assert page.url == f"{asgi_server.url}/accounts/login/"
    expect(page.locator(".user-menu")).to_have_count(0)


def create_agent_with_form(page, tenant) -> Agent:
    """Fill in and save the new-agent form; returns the agent once its page shows."""
    page.goto("/agents/new/")
    form = page.get_by_test_id("agent-form")
    form.locator("#id_name").fill("Front Desk")
    form.locator("#id_system_prompt").fill(PROMPT)
    form.locator("#id_greeting_message").fill(GREETING)
    page.get_by_test_id("agent-save").click()
    expect(page.get_by_test_id("agent-detail")).to_be_visible()
    return Agent.objects.for_tenant(tenant).get(name="Front Desk")


def test_creating_an_agent_through_the_form_shows_its_page(new_page, sign_in, tenant_owner, asgi_server):
    tenant, user = tenant_owner
    page = sign_in(new_page(), user)

    agent = create_agent_with_form(page, tenant)

    assert (agent.name, agent.system_prompt, agent.greeting_message) == ("Front Desk", PROMPT, GREETING)
    assert Agent.objects.for_tenant(tenant).count() == 1
    assert page.url == f"{asgi_server.url}/agents/{agent.pk}/"
    expect(page.locator("main h1")).to_have_text("Front Desk")
    detail = page.get_by_test_id("agent-detail")
    expect(detail).to_contain_text(GREETING)
    expect(detail).to_contain_text(PROMPT)


def add_faq_with_form(page, agent) -> None:
    """The agent's knowledge base gets the FAQ its offline responder answers "When are you open?" from."""
    page.goto(f"/agents/{agent.pk}/edit/")
    form = page.get_by_test_id("document-form")
    form.locator("#id_document-title").fill("Practice FAQ")
    form.locator("#id_document-content").fill(FAQ)
    page.get_by_test_id("document-add").click()
    expect(page.get_by_test_id("documents-table")).to_contain_text("Practice FAQ")


def start_test_call(page, agent) -> str:
    """Open the agent's page, start its test call and wait until it is connected; returns the call id."""
    page.goto(f"/agents/{agent.pk}/")
    page.get_by_test_id("test-call-start").click()
    expect(page.get_by_test_id("test-call-status")).to_contain_text("Connected", timeout=CALL_WAIT_MS)
    transcript = page.get_by_test_id("test-call-transcript")
    expect(transcript).to_have_attribute("data-call-id", re.compile(r"^[0-9a-f-]{36}$"))
    return transcript.get_attribute("data-call-id")


def hang_up(page, call_id: str) -> Call:
    """Hang up from the panel; returns the call once the server has finished ending it."""
    page.get_by_test_id("test-call-hangup").click()
    expect(page.get_by_test_id("test-call-status")).to_contain_text("Ended", timeout=CALL_WAIT_MS)
    # The browser hears "ended" once the bridge has ended the call; wait for its row all the same
    # (not a timing assertion: the test must not end while the server still writes).
    for _ in range(200):
        call = Call.objects.dangerously_unscoped().get(pk=call_id)
        if call.status == "ended":
            return call
        time.sleep(0.1)
    return call


def test_a_test_call_greets_hears_the_caller_and_answers_live(new_page, sign_in, tenant_owner, speech_engines):
    tenant, user = tenant_owner
    page = sign_in(new_page(), user)
    agent = create_agent_with_form(page, tenant)
    add_faq_with_form(page, agent)

    call_id = start_test_call(page, agent)
    watcher = sign_in(new_page(), user)  # a colleague follows the same call on its live page
    watcher.goto(f"/live/{call_id}/")

    transcript = page.get_by_test_id("test-call-transcript")
    speaker = page.get_by_test_id("test-call-speaker")  # who is speaking, from the call's audio
    expect(speaker).to_have_attribute("data-state", "agent", timeout=CALL_WAIT_MS)
    expect(speaker).to_have_text("Agent speaking")
    agent_turns = transcript.locator(".turn.speaker-agent")
    expect(agent_turns.first).to_contain_text(GREETING, timeout=CALL_WAIT_MS)
    expect(speaker).to_have_attribute("data-state", "listening", timeout=CALL_WAIT_MS)
    # The watched call is at the top of its live page, not again under "Other calls".
    expect(watcher.get_by_test_id("live-call")).to_be_visible()
    expect(watcher.get_by_test_id("live-calls").locator(f'[data-call-id="{call_id}"]')).to_have_count(0)
    # The fake microphone asks "When are you open?" after the greeting: its final transcript, then the answer.
    caller_turn = transcript.locator(".turn.speaker-caller:not(.interim)").filter(has_text=re.compile("open", re.I))
    expect(caller_turn.first).to_be_visible(timeout=CALL_WAIT_MS)
    answer = transcript.locator(".turn.speaker-caller:not(.interim) ~ .turn.speaker-agent")
    expect(answer.first).to_contain_text(ANSWER, timeout=CALL_WAIT_MS)
    followed = watcher.get_by_test_id("live-transcript")
    expect(followed.locator(".turn.speaker-agent").first).to_contain_text(GREETING)
    expect(followed.locator(".turn.speaker-caller:not(.interim)").first).to_contain_text(re.compile("open", re.I))
    expect(followed.locator(".turn.speaker-caller:not(.interim) ~ .turn.speaker-agent").first).to_contain_text(ANSWER)

    call = hang_up(page, call_id)

    # The agent page's latest calls now list the call, without a reload.
    latest = page.get_by_test_id("agent-latest-calls").locator(f'[data-call-id="{call_id}"]')
    expect(latest).to_be_visible(timeout=CALL_WAIT_MS)
    expect(latest.get_by_test_id("call-outcome")).to_have_text("Ended")
    expect(watcher.get_by_test_id("live-call-outcome")).to_have_text("Ended", timeout=CALL_WAIT_MS)
    assert page.js_errors == [] and watcher.js_errors == []
    assert (call.tenant_id, call.agent_id, call.status, call.end_reason) == (
        tenant.pk,
        agent.pk,
        "ended",
        "caller_hangup",
    )
    turns = list(TranscriptTurn.objects.for_tenant(tenant).filter(call=call).order_by("turn_number"))
    assert [(t.speaker, t.text) for t in turns[:1]] == [("agent", GREETING)]
    asked = next(t for t in turns if t.speaker == "caller")
    assert "open" in asked.text.lower()
    assert any(t.speaker == "agent" and t.text == ANSWER and t.turn_number > asked.turn_number for t in turns)

    # The call's own page shows the stored conversation.
    page.goto(f"/calls/{call_id}/")
    stored = page.get_by_test_id("call-transcript")
    expect(stored).to_contain_text(GREETING)
    expect(stored).to_contain_text(asked.text)
    expect(stored).to_contain_text(ANSWER)


def test_the_live_page_shows_a_running_test_call(new_page, sign_in, tenant_owner, speech_engines):
    tenant, user = tenant_owner
    agent = make_agent(tenant, name="Front Desk", greeting=GREETING, tools=[])
    live = sign_in(new_page(), user)
    live.goto("/live/")
    expect(live.get_by_test_id("live-connection")).to_have_class(re.compile(r"\bon\b"))  # its websocket is open
    caller = sign_in(new_page(), user)

    call_id = start_test_call(caller, agent)

    # The live page was open before the call started: the call arrives over its websocket.
    row = live.get_by_test_id("live-calls").locator(f'[data-call-id="{call_id}"]')
    expect(row).to_be_visible(timeout=CALL_WAIT_MS)
    opened_later = sign_in(new_page(), user)
    opened_later.goto("/live/")  # and a page opened while the call runs lists it too
    expect(opened_later.get_by_test_id("live-calls").locator(f'[data-call-id="{call_id}"]')).to_be_visible()

    hang_up(caller, call_id)

    expect(row).to_have_count(0, timeout=CALL_WAIT_MS)  # an ended call leaves the live page


def seed_usage(tenant) -> None:
    """Ten days of metered calls over two agents: something in each of the usage page's charts."""
    agents = [factories.AgentFactory(tenant=tenant, name=name) for name in ("Front Desk", "After Hours")]
    now = timezone.now()
    for day in range(10):
        for n, agent in enumerate(agents):
            ended = now - timedelta(days=day, hours=n + 1)
            factories.UsageRecordFactory(
                tenant=tenant,
                agent=agent,
                period_start=ended - timedelta(seconds=90 + 30 * day),
                period_end=ended,
                quantity=90 + 30 * day,
                billable_quantity=120 + 30 * day,
            )


def test_the_usage_page_renders_its_four_charts(new_page, sign_in, tenant_owner):
    tenant, user = tenant_owner
    seed_usage(tenant)
    page = sign_in(new_page(), user)

    page.goto("/usage/")

    expect(page.locator('canvas[data-testid^="chart-"][data-rendered="1"]')).to_have_count(4)
    assert page.js_errors == []
