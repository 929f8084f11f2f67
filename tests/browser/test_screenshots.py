"""Screenshots of the dashboard's main pages at desktop and phone width, kept as CI artifacts.

Each page is saved as `<SCREENSHOT_DIR or artifacts/screenshots>/<page>-desktop.png` and
`<page>-phone.png` (full page). On the way, every page must answer 200, have a title, raise no
JavaScript error, and fit a phone's width without scrolling sideways.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.models import CallEvent, ToolCall, TranscriptTurn
from tenants.models import Membership
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = pytest.mark.browser


def seed_realistic_tenant():
    """A tenant with what its pages show: agents, a number, a finished call, usage, a key, a webhook."""
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    plan = factories.PlanFactory(name="Growth", slug="growth", included_minutes=1000)
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    owner = factories.UserFactory(username="dana", first_name="Dana", last_name="Reyes")
    factories.MembershipFactory(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    voice = factories.VoiceFactory(tenant=tenant, name="Warm receptionist", provider_voice_id="warm_receptionist")
    agent = factories.AgentFactory(
        tenant=tenant,
        name="Front Desk",
        system_prompt="You are the friendly receptionist of Acme Dental. Book, move and cancel appointments.",
        greeting_message="Thank you for calling Acme Dental. How can I help?",
        voice=voice,
    )
    factories.AgentFactory(tenant=tenant, name="After Hours", greeting_message="Acme Dental is closed right now.")
    factories.KnowledgeDocumentFactory(agent=agent, tenant=tenant, title="Practice FAQ")
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15551234567", friendly_name="Main line")
    call = finished_call(tenant, agent)
    seed_usage(tenant, agent, call)
    factories.ApiKeyFactory(tenant=tenant, name="Booking system")
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, url="https://hooks.acme-dental.example/voice")
    factories.WebhookDeliveryFactory(endpoint=endpoint)
    factories.InvoiceFactory(tenant=tenant, total=Decimal("54.20"))
    return tenant, owner, agent, call


def finished_call(tenant, agent):
    started = timezone.now() - timedelta(hours=2)
    call = factories.CallFactory(
        tenant=tenant,
        agent=agent,
        from_number="+15557654321",
        to_number="+15551234567",
        status="ended",
        end_reason="caller_hangup",
        started_at=started,
        answered_at=started + timedelta(seconds=2),
        ended_at=started + timedelta(seconds=95),
        duration_seconds=93,
    )
    lines = [
        ("agent", "Thank you for calling Acme Dental. How can I help?"),
        ("caller", "Hi, I'd like to book a cleaning next Monday."),
        ("agent", "Let me check the calendar for you."),
        ("agent", "I have 9 AM or 2:30 PM on Monday. Which suits you?"),
        ("caller", "2:30 please."),
        ("agent", "Done: Monday at 2:30 PM. See you then!"),
    ]
    for number, (speaker, text) in enumerate(lines, start=1):
        factories.TranscriptTurnFactory(
            call=call,
            turn_number=number,
            speaker=speaker,
            text=text,
            started_at=started + timedelta(seconds=5 * number),
        )
    events = [(CallEvent.Type.CALL_RINGING, 0), (CallEvent.Type.CALL_CONNECTED, 2), (CallEvent.Type.CALL_ENDED, 95)]
    for number, (event_type, seconds) in enumerate(events, start=1):
        factories.CallEventFactory(
            call=call, sequence=number, event_type=event_type, occurred_at=started + timedelta(seconds=seconds)
        )
    factories.ToolCallFactory(
        call=call,
        started_at=started + timedelta(seconds=16),
        ended_at=started + timedelta(seconds=16.24),
        tool_name="check_availability",
        arguments={"date": "2026-11-23"},
        result={"slots": ["09:00", "14:30"]},
        status=ToolCall.Status.SUCCEEDED,
        duration_ms=240,
    )
    assert TranscriptTurn.objects.for_tenant(tenant).filter(call=call).count() == len(lines)
    return call


def seed_usage(tenant, agent, call) -> None:
    now = timezone.now()
    for day in range(14):
        ended = now - timedelta(days=day, hours=1)
        factories.UsageRecordFactory(
            tenant=tenant,
            agent=agent,
            call=call if day == 0 else None,
            period_start=ended - timedelta(seconds=60 + 20 * day),
            period_end=ended,
            quantity=60 + 20 * day,
            billable_quantity=60 + 20 * day,
            amount=Decimal("0.05") * (1 + day // 3),
        )


CHARTS_DRAWN = 'canvas[data-testid^="chart-"][data-rendered="1"] >> nth=3'


def main_pages(agent, call) -> list[tuple[str, str, str | None]]:
    """(screenshot name, path, what to wait for before the picture) of the signed-in pages, in menu order."""
    return [
        ("overview", reverse("web:overview"), None),
        ("agents", reverse("agents:list"), None),
        ("agent", reverse("agents:detail", args=[agent.pk]), None),
        ("agent-edit", reverse("agents:edit", args=[agent.pk]), None),
        ("numbers", reverse("telephony:numbers"), None),
        ("voices", reverse("agents:voices"), None),
        ("calls", reverse("calls:list"), None),
        ("call", reverse("calls:detail", args=[call.pk]), None),
        ("live", reverse("calls:live"), None),
        ("usage", reverse("billing:usage"), CHARTS_DRAWN),
        ("developers", reverse("integrations:developers"), None),
        ("api-keys", reverse("integrations:api-keys"), None),
        ("webhooks", reverse("integrations:webhooks"), None),
    ]


def fits_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def visit(page, name: str, path: str, ready: str | None, width_name: str, screenshot, problems: list[str]) -> None:
    response = page.goto(path)
    page.wait_for_load_state("networkidle")
    if ready:
        page.locator(ready).wait_for(state="attached")
    label = f"{name} ({path}) at {width_name} width"
    if response is None or response.status != 200:
        problems.append(f"{label}: status {response.status if response else 'none'}")
    if not page.title().strip():
        problems.append(f"{label}: no <title>")
    if width_name == "phone" and not fits_width(page):
        wide = page.evaluate("document.documentElement.scrollWidth")
        problems.append(f"{label}: {wide}px wide, overflows the {PHONE['width']}px screen")
    if page.js_errors:
        problems.append(f"{label}: JavaScript errors {page.js_errors}")
        page.js_errors.clear()
    screenshot(page, f"{name}-{width_name}")


def test_screenshots_of_main_pages(new_page, sign_in, screenshot):
    _, owner, agent, call = seed_realistic_tenant()
    pages = main_pages(agent, call)
    problems: list[str] = []

    for width_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(**size)
        visit(page, "sign-in", reverse("login"), None, width_name, screenshot, problems)
        sign_in(page, owner)
        for name, path, ready in pages:
            visit(page, name, path, ready, width_name, screenshot, problems)

    assert problems == [], "\n".join(problems)
