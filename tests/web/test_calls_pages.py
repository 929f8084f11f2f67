"""The calls list, one call's page and its recording: filters, tenant scoping, transcript, tools, events, latency."""

import html as html_lib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile

from calls.models import Call, TranscriptTurn
from calls.state_machine import CallStatus
from tests import factories

pytestmark = pytest.mark.django_db

LIST_URL = "/calls/"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def detail_url(call) -> str:
    return f"/calls/{call.pk}/"


def recording_url(call, recording) -> str:
    return f"/calls/{call.pk}/recording/{recording.pk}"


def ended_call(tenant, *, agent, started_at, seconds=60, **fields) -> Call:
    call = factories.CallFactory(
        tenant=tenant,
        agent=agent,
        status=CallStatus.ENDED,
        started_at=started_at,
        answered_at=started_at,
        ended_at=started_at + timedelta(seconds=seconds),
        duration_seconds=seconds,
        **fields,
    )
    return call


def listed_ids(response) -> list[str]:
    return re.findall(r'data-call-id="([0-9a-f-]+)"', response.content.decode())


@pytest.fixture
def agents(tenant):
    return factories.AgentFactory(tenant=tenant, name="Front desk"), factories.AgentFactory(tenant=tenant, name="Sales")


@pytest.fixture
def calls(tenant, agents):
    """Four calls on three days; created_at set so the newest-first order is known."""
    front, sales = agents
    rows = {
        "inbound_hangup": ended_call(
            tenant,
            agent=front,
            started_at=T0,
            seconds=125,
            from_number="+15551230001",
            to_number="+15550000100",
            end_reason=Call.EndReason.CALLER_HANGUP,
        ),
        "outbound_transfer": ended_call(
            tenant,
            agent=sales,
            started_at=T0 + timedelta(days=1),
            direction=Call.Direction.OUTBOUND,
            from_number="+15550000100",
            to_number="+15559870002",
            end_reason=Call.EndReason.TRANSFERRED,
        ),
        "inbound_timeout": ended_call(
            tenant,
            agent=sales,
            started_at=T0 + timedelta(days=2),
            from_number="+15551230003",
            to_number="+15550000100",
            end_reason=Call.EndReason.IDLE_TIMEOUT,
        ),
        "live": factories.CallFactory(
            tenant=tenant,
            agent=front,
            status=CallStatus.CONVERSING,
            started_at=T0 + timedelta(days=2, hours=1),
            from_number="+15551230004",
            to_number="+15550000100",
        ),
    }
    for index, call in enumerate(rows.values()):
        Call.objects.dangerously_unscoped().filter(pk=call.pk).update(created_at=T0 + timedelta(days=index))
    return rows


def ids(calls: dict, *names) -> list[str]:
    return [str(calls[name].pk) for name in names]


# --- the list -----------------------------------------------------------------------------------


def test_list_shows_the_tenants_calls_newest_first(web_client, calls):
    response = web_client.get(LIST_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["page_title"] == "Calls"
    assert listed_ids(response) == ids(calls, "live", "inbound_timeout", "outbound_transfer", "inbound_hangup")
    assert 'data-testid="calls-table"' in html and 'data-testid="calls-filters"' in html
    assert "2:05" in html  # 125 s
    assert "Caller hung up" in html and "Transferred to a human" in html
    assert '<meta name="viewport"' in html


def test_live_calls_link_to_the_live_view_and_ended_ones_to_their_page(web_client, calls):
    html = web_client.get(LIST_URL).content.decode()

    assert f'href="/live/{calls["live"].pk}/"' in html
    assert f'href="/calls/{calls["live"].pk}/"' not in html
    assert f'href="/calls/{calls["inbound_hangup"].pk}/"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=ended", ["inbound_timeout", "outbound_transfer", "inbound_hangup"]),
        ("status=conversing", ["live"]),
        ("direction=outbound", ["outbound_transfer"]),
        ("direction=inbound", ["live", "inbound_timeout", "inbound_hangup"]),
        ("date_from=2026-03-11&date_to=2026-03-11", ["outbound_transfer"]),
        ("date_from=2026-03-12", ["live", "inbound_timeout"]),
        ("date_to=2026-03-10", ["inbound_hangup"]),
        ("number=%2B1555123", ["live", "inbound_timeout", "inbound_hangup"]),
        ("number=987+0002", ["outbound_transfer"]),
        ("end_reason=idle_timeout", ["inbound_timeout"]),
        ("direction=inbound&status=ended&end_reason=caller_hangup", ["inbound_hangup"]),
    ],
)
def test_filters_give_exactly_the_matching_calls(web_client, calls, query, expected):
    response = web_client.get(f"{LIST_URL}?{query}")

    assert response.status_code == 200
    assert listed_ids(response) == ids(calls, *expected)


def test_filter_by_agent(web_client, calls, agents):
    response = web_client.get(f"{LIST_URL}?agent={agents[1].pk}")

    assert listed_ids(response) == ids(calls, "inbound_timeout", "outbound_transfer")


def test_filters_matching_nothing_say_so(web_client, calls):
    response = web_client.get(f"{LIST_URL}?end_reason=voicemail")

    html = response.content.decode()
    assert response.status_code == 200
    assert "No calls match" in html
    assert "No calls yet" not in html
    assert 'data-testid="calls-table"' not in html


def test_empty_state_without_calls(web_client):
    response = web_client.get(LIST_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "No calls yet" in html
    assert 'data-testid="calls-table"' not in html


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("date_from=2026-13-45", "date_from", "Enter a valid date."),
        ("date_from=2026-03-12&date_to=2026-03-10", "date_to", "The end date must be on or after the start date."),
        ("status=bogus", "status", "Select a valid choice. bogus is not one of the available choices."),
        ("number=abc", "number", "Enter digits of a phone number, such as +1555 or 0100."),
        ("agent=not-a-uuid", "agent", "“not-a-uuid” is not a valid UUID."),
    ],
)
def test_invalid_filters_show_an_inline_error_and_no_calls(web_client, calls, query, field, message):
    response = web_client.get(f"{LIST_URL}?{query}")

    html = response.content.decode()
    assert response.status_code == 400
    assert response.context["filter_form"].errors[field] == [message]
    assert html_lib.escape(message) in html
    assert 'class="field-error"' in html
    assert listed_ids(response) == []


def test_another_tenants_agent_is_not_a_valid_filter(web_client, calls, other_tenant):
    theirs = factories.AgentFactory(tenant=other_tenant, name="Globex desk")

    response = web_client.get(f"{LIST_URL}?agent={theirs.pk}")

    assert response.status_code == 400
    assert "agent" in response.context["filter_form"].errors
    assert "Globex desk" not in response.content.decode()


def test_another_tenants_calls_are_never_listed(web_client, other_web_client, calls, other_tenant):
    theirs = factories.CallFactory(tenant=other_tenant, from_number="+15557770000")

    ours = web_client.get(LIST_URL)
    their_list = other_web_client.get(LIST_URL)

    assert str(theirs.pk) not in listed_ids(ours)
    assert "+15557770000" not in ours.content.decode()
    assert listed_ids(their_list) == [str(theirs.pk)]


def test_list_is_paginated_by_25_and_keeps_the_filters(web_client, tenant, agents):
    for index in range(27):
        call = factories.CallFactory(tenant=tenant, agent=agents[0], direction=Call.Direction.OUTBOUND)
        Call.objects.dangerously_unscoped().filter(pk=call.pk).update(created_at=T0 + timedelta(minutes=index))
    factories.CallFactory(tenant=tenant, agent=agents[0])  # inbound: filtered out

    first = web_client.get(f"{LIST_URL}?direction=outbound")
    second = web_client.get(f"{LIST_URL}?direction=outbound&page=2")

    assert len(listed_ids(first)) == 25
    assert len(listed_ids(second)) == 2
    assert "direction=outbound&amp;page=2" in first.content.decode()


def test_viewer_sees_the_list_but_cannot_post(viewer_client, calls):
    assert viewer_client.get(LIST_URL).status_code == 200

    response = viewer_client.post(LIST_URL, {"status": "ended"})

    assert response.status_code == 403
    assert Call.objects.dangerously_unscoped().count() == 4


# --- one call -----------------------------------------------------------------------------------


@pytest.fixture
def full_call(tenant, agents):
    call = ended_call(
        tenant,
        agent=agents[0],
        started_at=T0,
        seconds=95,
        from_number="+15551230001",
        to_number="+15550000100",
        end_reason=Call.EndReason.CALLER_HANGUP,
        analysis={
            "summary": "The caller booked a cleaning for Monday.",
            "outcome": "appointment_booked",
            "sentiment": "positive",
            "fields": {"appointment_date": "2026-03-16"},
            "provider": "offline",
            "model": "rules",
        },
        talk_stats={
            "agent_seconds": 40.5,
            "caller_seconds": 30.0,
            "silence_seconds": 24.5,
            "interruptions": 1,
            "average_response_seconds": 0.9,
        },
    )
    turn = factories.TranscriptTurnFactory  # turns saved out of order: the page orders them
    turn(call=call, turn_number=3, speaker="caller", text="Monday at nine, please.", started_at=T0 + timedelta(seconds=9),
         metadata={"stt_ms": 220})  # fmt: skip
    turn(call=call, turn_number=1, speaker="agent", text="Hello, Acme Dental.", started_at=T0 + timedelta(seconds=1),
         metadata={"llm_ttft_ms": 300, "tts_ttfb_ms": 120, "e2e_ms": 700})  # fmt: skip
    turn(call=call, turn_number=2, speaker="caller", text="I need a cleaning.", started_at=T0 + timedelta(seconds=4),
         metadata={"stt_ms": 180, "end_of_turn_ms": 400})  # fmt: skip
    turn(call=call, turn_number=4, speaker="agent", text="Booked for Monday at", started_at=T0 + timedelta(seconds=11),
         interrupted=True, metadata={"llm_ttft_ms": 420, "tts_ttfb_ms": 150, "e2e_ms": 900})  # fmt: skip
    turn(call=call, turn_number=5, speaker="caller", text="Thanks!", started_at=T0 + timedelta(seconds=13))
    turn(call=call, turn_number=6, speaker="agent", text="You're welcome.", started_at=T0 + timedelta(seconds=14),
         metadata={"llm_ttft_ms": 380, "tts_ttfb_ms": 170, "e2e_ms": 1100,
                   "knowledge": [{"label": "Price list › Cleaning, page 3", "document_id": "d1", "score": 0.9},
                                 {"label": "<b>FAQ</b>", "document_id": "d2", "score": 0.5}]})  # fmt: skip
    factories.ToolCallFactory(
        call=call,
        tool_name="book_appointment",
        arguments={"date": "2026-03-16", "time": "09:00"},
        result={"booked": True, "confirmation": "A-17"},
        status="succeeded",
        http_status=200,
        started_at=T0 + timedelta(seconds=10),
        duration_ms=412,
    )
    factories.ToolCallFactory(
        call=call,
        tool_name="send_sms",
        arguments={"to": "+15551230001"},
        result=None,
        status="failed",
        error="Backend answered 503",
        http_status=503,
        started_at=T0 + timedelta(seconds=12),
        duration_ms=80,
    )
    event = factories.CallEventFactory
    event(call=call, sequence=2, event_type="call.connected", occurred_at=T0 + timedelta(seconds=1.5),
          payload={"answered_by": "agent"})  # fmt: skip
    event(call=call, sequence=1, event_type="call.ringing", occurred_at=T0, payload={})
    event(call=call, sequence=3, event_type="call.ended", occurred_at=T0 + timedelta(seconds=95),
          payload={"reason": "caller_hangup"})  # fmt: skip
    return call


def test_call_page_shows_the_header(web_client, full_call):
    response = web_client.get(detail_url(full_call))

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["page_title"] == "Call from +15551230001"
    assert 'data-testid="call-status" data-tone="ok">Ended<' in html
    assert 'data-testid="call-duration">1:35<' in html
    assert 'data-testid="call-end-reason">Caller hung up<' in html
    assert "Front desk" in html and "+15550000100" in html
    assert 'data-testid="call-live-banner"' not in html


def test_call_page_shows_the_conversation_in_order(web_client, full_call):
    response = web_client.get(detail_url(full_call))

    html = response.content.decode()
    turns = re.findall(r'<div class="turn speaker-(\w+)([^"]*)" data-turn="(\d+)"', html)
    assert turns == [
        ("agent", "", "1"),
        ("caller", "", "2"),
        ("caller", "", "3"),
        ("agent", " interrupted", "4"),
        ("caller", "", "5"),
        ("agent", "", "6"),
    ]
    texts = ["Hello, Acme Dental.", "I need a cleaning.", "Monday at nine, please.", "Booked for Monday at"]
    positions = [html.index(text) for text in texts]
    assert positions == sorted(positions)
    assert 'data-testid="call-transcript"' in html and 'class="conversation"' in html
    assert "Agent · +0:01.0" in html


def test_an_agent_turn_names_the_knowledge_it_drew_on(web_client, full_call):
    html = web_client.get(detail_url(full_call)).content.decode()

    sources = re.findall(r'<small class="sources" data-testid="turn-sources">([^<]*)</small>', html)
    assert sources == ["From: Price list › Cleaning, page 3; &lt;b&gt;FAQ&lt;/b&gt;"]  # escaped, only on turn 6


def test_call_page_shows_tool_calls_with_arguments_and_results(web_client, full_call):
    html = web_client.get(detail_url(full_call)).content.decode()

    section = html[html.index('data-testid="call-tool-calls"') : html.index('data-testid="call-events"')]
    arguments = json.dumps({"date": "2026-03-16", "time": "09:00"}, indent=2)
    result = json.dumps({"booked": True, "confirmation": "A-17"}, indent=2)
    assert f'<pre class="json" data-testid="tool-call-arguments">{html_lib.escape(arguments)}</pre>' in section
    assert f'<pre class="json" data-testid="tool-call-result">{html_lib.escape(result)}</pre>' in section
    assert "book_appointment" in section and "HTTP 200" in section and "412 ms" in section
    assert "send_sms" in section and "Backend answered 503" in section and "HTTP 503" in section
    assert section.count('data-testid="tool-call-result"') == 1


def test_call_page_shows_the_events_on_a_timeline(web_client, full_call):
    html = web_client.get(detail_url(full_call)).content.decode()

    section = html[html.index('data-testid="call-events"') :]
    assert re.findall(r'data-sequence="(\d+)"', section) == ["1", "2", "3"]
    assert '<ol class="timeline">' in section
    assert "+0:00.0" in section and "+0:01.5" in section and "+1:35.0" in section
    payload = html_lib.escape(json.dumps({"answered_by": "agent"}, indent=2))
    assert f'<details><summary>Payload</summary><pre class="json">{payload}</pre></details>' in section
    assert section.count("<summary>Payload</summary>") == 2  # the ringing event has none


def test_call_page_shows_per_turn_latency_and_its_percentiles(web_client, full_call):
    response = web_client.get(detail_url(full_call))

    latency = response.context["latency"]
    assert [(row["turn"].turn_number, row["values"]) for row in latency["rows"]] == [
        (1, [None, 300, 120, 700]),
        (4, [220, 420, 150, 900]),
        (6, [None, 380, 170, 1100]),
    ]
    assert [(c["key"], c["p50"], c["p95"]) for c in latency["columns"]] == [
        ("stt_ms", 220, 220),
        ("llm_ttft_ms", 380, 420),
        ("tts_ttfb_ms", 150, 170),
        ("e2e_ms", 900, 1100),
    ]
    html = response.content.decode()
    section = html[html.index('data-testid="call-latency"') : html.index('data-testid="call-tool-calls"')]
    assert "<td>220 ms</td><td>420 ms</td><td>150 ms</td><td>900 ms</td>" in section
    assert re.search(r'data-testid="call-latency-p95"><th>p95</th><td>220 ms</td><td>420 ms</td>', section)


def test_call_page_shows_the_analysis(web_client, full_call):
    html = web_client.get(detail_url(full_call)).content.decode()

    section = html[html.index('data-testid="call-analysis"') : html.index('data-testid="call-latency"')]
    assert 'data-testid="call-analysis-summary">The caller booked a cleaning for Monday.<' in section
    assert 'data-testid="call-analysis-outcome" title="appointment_booked">Appointment booked<' in section
    assert 'data-testid="call-analysis-sentiment">positive<' in section
    assert "<dt>Appointment date</dt><dd>2026-03-16</dd>" in section
    assert "Analysed offline by plain rules" in section
    assert "<dt>Interruptions</dt><dd>1</dd>" in section


def test_call_page_plays_the_recording_served_for_the_tenant(web_client, full_call):
    recording = factories.RecordingFactory(call=full_call, format="wav", duration_seconds=95.0)

    page = web_client.get(detail_url(full_call)).content.decode()
    audio = web_client.get(recording_url(full_call, recording))

    assert f'<audio controls preload="none" src="{recording_url(full_call, recording)}"' in page
    assert 'data-testid="call-recording"' in page
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/wav"
    assert b"".join(audio.streaming_content) == b"RIFF"


def test_the_players_range_requests_get_partial_content_so_it_can_seek(web_client, full_call):
    recording = factories.RecordingFactory(call=full_call, file=ContentFile(b"RIFF" + bytes(range(256)), name="c.wav"))

    part = web_client.get(recording_url(full_call, recording), HTTP_RANGE="bytes=4-7")
    # Read before the next request: InMemoryStorage hands every reader of a file the same stream.
    assert b"".join(part.streaming_content) == bytes([0, 1, 2, 3])
    past_the_end = web_client.get(recording_url(full_call, recording), HTTP_RANGE="bytes=260-")

    assert part.status_code == 206
    assert (part["Content-Range"], part["Accept-Ranges"]) == ("bytes 4-7/260", "bytes")
    assert past_the_end.status_code == 416
    assert past_the_end["Content-Range"] == "bytes */260"


def test_mp3_recording_has_its_content_type(web_client, full_call):
    recording = factories.RecordingFactory(call=full_call, format="mp3")

    response = web_client.get(recording_url(full_call, recording))

    assert response["Content-Type"] == "audio/mpeg"


def test_call_without_recording_or_analysis_says_so(web_client, tenant, agents):
    call = ended_call(tenant, agent=agents[0], started_at=T0)

    html = web_client.get(detail_url(call)).content.decode()

    assert "No recording for this call." in html
    assert "No analysis for this call yet" in html
    assert "No latency measurements for this call." in html
    assert "The agent called no tools on this call." in html
    assert "Nothing said yet" in html


def test_live_call_page_links_to_the_live_view(web_client, tenant, agents):
    call = factories.CallFactory(tenant=tenant, agent=agents[0], status=CallStatus.CONVERSING)
    factories.TranscriptTurnFactory(call=call, turn_number=1, speaker=TranscriptTurn.Speaker.AGENT, text="Hello!")

    html = web_client.get(detail_url(call)).content.decode()

    assert 'data-testid="call-live-banner"' in html
    assert f'href="/live/{call.pk}/"' in html
    assert "Hello!" in html


def test_another_tenants_call_and_recording_are_404(web_client, other_tenant):
    theirs = factories.CallFactory(tenant=other_tenant)
    recording = factories.RecordingFactory(call=theirs)

    assert web_client.get(detail_url(theirs)).status_code == 404
    assert web_client.get(recording_url(theirs, recording)).status_code == 404


def test_recording_under_another_call_is_404(web_client, full_call, tenant, agents):
    other_call = ended_call(tenant, agent=agents[1], started_at=T0)
    recording = factories.RecordingFactory(call=other_call)

    assert web_client.get(recording_url(full_call, recording)).status_code == 404


def test_unknown_call_is_404(web_client):
    assert web_client.get("/calls/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_viewer_sees_a_call_but_cannot_post_to_it(viewer_client, full_call):
    assert viewer_client.get(detail_url(full_call)).status_code == 200

    response = viewer_client.post(detail_url(full_call))

    assert response.status_code == 403
    full_call.refresh_from_db()
    assert full_call.status == CallStatus.ENDED
