"""Item 10: a call that never connected never looks successful, on every page a call appears on."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import postcall
from calls.consumers import call_summary
from calls.models import Call
from calls.services import call_initiate
from calls.state_machine import CallStatus
from tests import factories

pytestmark = pytest.mark.django_db

NOT_CONFIGURED = "No phone carrier is configured on this deployment, so the call was not placed"


@pytest.fixture
def failed_outbound(tenant):
    """An outbound call placed on a deployment without a carrier: the real service ends it at once."""
    agent = factories.AgentFactory(tenant=tenant, name="Sales")
    call = factories.CallFactory(
        tenant=tenant,
        agent=agent,
        direction=Call.Direction.OUTBOUND,
        from_number="+15550000100",
        to_number="+15559870002",
    )
    call_initiate(call=call)
    call.refresh_from_db()
    postcall.call_process_transcript(call=call)
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == (
        "ended",
        "error",
        "telephony_not_configured",
    )
    return call


def answered_inbound(tenant, **fields):
    now = timezone.now()
    return factories.CallFactory(
        tenant=tenant,
        status=CallStatus.ENDED,
        started_at=now - timedelta(seconds=82),
        answered_at=now - timedelta(seconds=82),
        ended_at=now,
        duration_seconds=82,
        end_reason=Call.EndReason.CALLER_HANGUP,
        from_number="+15551230001",
        **fields,
    )


def outcome_badge(html: str, testid: str = "call-outcome") -> tuple[str, str]:
    match = re.search(rf'<span class="badge tone-(\w+)" data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert match, f"no {testid} badge"
    return match.group(1), match.group(2)


def test_the_call_page_of_a_call_that_was_never_placed_says_failed_and_why(web_client, failed_outbound):
    response = web_client.get(f"/calls/{failed_outbound.pk}/")

    html = response.content.decode()
    assert response.context["page_title"] == "Call to +15559870002"
    assert outcome_badge(html, "call-status") == ("failed", "Failed")
    assert f'data-testid="call-failure-reason"><strong>Failed:</strong> {NOT_CONFIGURED}.' in html
    assert 'data-testid="call-duration">—<' in html  # not a misleading 0:00
    assert 'data-testid="call-analysis-outcome" title="not_connected">Not connected<' in html
    assert "Call from" not in html


def test_the_calls_list_and_the_overview_show_the_failure_in_words(web_client, failed_outbound):
    for url in ("/calls/", "/"):
        html = web_client.get(url).content.decode()

        assert outcome_badge(html) == ("failed", "Failed"), url
        assert f'data-testid="call-outcome-reason">{NOT_CONFIGURED}<' in html, url
        assert 'data-tone="ok"' not in html, url  # no green "Ended" badge


def test_the_agent_page_shows_the_failure_too(web_client, failed_outbound):
    html = web_client.get(f"/agents/{failed_outbound.agent_id}/").content.decode()

    assert outcome_badge(html) == ("failed", "Failed")
    assert NOT_CONFIGURED in html


def test_the_analysis_summary_of_a_failed_call_says_it_never_connected(failed_outbound):
    assert failed_outbound.analysis["summary"] == (
        f"Call to +15559870002 with Sales never connected: {NOT_CONFIGURED[0].lower()}{NOT_CONFIGURED[1:]}."
    )
    assert failed_outbound.analysis["outcome"] == "not_connected"


def test_the_live_sockets_call_summary_carries_the_outcome_and_the_title(failed_outbound):
    summary = call_summary(Call.objects.dangerously_unscoped().select_related("agent").get(pk=failed_outbound.pk))

    assert summary["title"] == "Call to +15559870002"
    assert summary["counterpart"] == "+15559870002"
    assert summary["outcome"] == {"label": "Failed", "tone": "failed", "reason": NOT_CONFIGURED}
    assert summary["duration_text"] == ""


def test_a_call_nobody_answered_is_neutral_not_connected(web_client, tenant):
    call = factories.CallFactory(
        tenant=tenant,
        direction=Call.Direction.OUTBOUND,
        to_number="+15559870003",
        status=CallStatus.ENDED,
        started_at=timezone.now() - timedelta(seconds=30),
        ended_at=timezone.now(),
        duration_seconds=0,
        end_reason=Call.EndReason.NO_ANSWER,
        metadata={"failure_reason": "no_answer"},
    )

    html = web_client.get(f"/calls/{call.pk}/").content.decode()

    assert outcome_badge(html, "call-status") == ("neutral", "Not connected")
    assert "<strong>Not connected:</strong> Nobody answered." in html


def test_an_answered_call_is_ended_green_from_its_caller_with_one_duration_format(web_client, tenant):
    call = answered_inbound(tenant)

    page = web_client.get(f"/calls/{call.pk}/")
    listed = web_client.get("/calls/").content.decode()
    overview = web_client.get("/").content.decode()

    assert page.context["page_title"] == "Call from +15551230001"
    assert outcome_badge(page.content.decode(), "call-status") == ("ok", "Ended")
    assert 'data-testid="call-failure-reason"' not in page.content.decode()
    assert 'data-testid="call-duration">1:22<' in page.content.decode()
    assert "<td>1:22</td>" in listed and "<td>1:22</td>" in overview
    assert "82 s" not in overview
