"""process_transcript: final transcript, talk-time statistics, analysis (offline or by the LLM), sent once."""

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from calls import analysis
from calls.models import Call
from calls.postcall import call_process_transcript
from calls.services import call_transition
from calls.tasks import process_missed_transcripts, process_transcript
from integrations.models import WebhookDelivery
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
ANALYSIS = {
    "outcomes": [
        {"name": "appointment_booked", "description": "An appointment was booked"},
        {"name": "information_only", "description": "The caller only asked about opening hours"},
    ],
    "fields_schema": {
        "type": "object",
        "properties": {
            "appointment_date": {"type": "string", "format": "date"},
            "patient_name": {"type": "string"},
            "email": {"type": "string"},
            "new_patient": {"type": "boolean"},
            "visit_type": {"enum": ["cleaning", "filling", "checkup"]},
        },
    },
}
LINES = [
    ("agent", 0, 4, "Thanks for calling Acme Dental, how can I help?"),
    ("caller", 5, 12, "Hi, my name is Ada Lovelace, I'm a new patient and would like a cleaning."),
    ("agent", 13, 16, "Sure. When would suit you?"),
    ("caller", 17, None, "Tuesday please, that would be great. My email is ada@example.com, thanks!"),
    ("agent", 25, 29, "Your appointment is booked for Tuesday. Goodbye!"),
]


def ended_call(tenant, *, settings=None, lines=LINES):
    agent = factories.AgentFactory(
        tenant=tenant, name="Receptionist", settings={"analysis": ANALYSIS} if settings is None else settings
    )
    call = factories.CallFactory(tenant=tenant, agent=agent, started_at=T0)
    call_transition(call=call, to_status="ringing", at=T0)
    call_transition(call=call, to_status="connected", at=T0)
    for n, (speaker, start, end, text) in enumerate(lines, start=1):
        factories.TranscriptTurnFactory(
            call=call, turn_number=n, speaker=speaker, text=text, started_at=T0 + timedelta(seconds=start),
            ended_at=T0 + timedelta(seconds=end) if end is not None else None,
        )  # fmt: skip
    return call_transition(call=call, to_status="ended", end_reason="caller_hangup", at=T0 + timedelta(seconds=40))


def sent(tenant, event_type):
    return [
        json.loads(d.body)["data"] for d in WebhookDelivery.objects.for_tenant(tenant).filter(event_type=event_type)
    ]


def test_offline_processing_finalizes_measures_analyses_and_sends_once(tenant):
    factories.WebhookEndpointFactory(tenant=tenant)
    call = ended_call(tenant)

    call = call_process_transcript(call=call)
    again = call_process_transcript(call=Call.objects.dangerously_unscoped().get(pk=call.pk))

    assert call.talk_stats == {
        "agent_seconds": 11.0,  # 4 + 3 + 4
        "caller_seconds": 15.0,  # 7 + 8 (the open turn ends when the next one starts)
        "silence_seconds": 14.0,
        "turns": 5,
        "agent_turns": 3,
        "caller_turns": 2,
        "interruptions": 0,
        "caller_talk_ratio": 0.577,
        "average_response_seconds": 0.5,  # (1 + 0) / 2
    }
    assert call.analysis == {
        "summary": 'Inbound call of 0:40 with Receptionist. The caller said: "Hi, my name is Ada Lovelace, '
        "I'm a new patient and would like a cleaning.\". It ended: caller hung up.",
        "outcome": "appointment_booked",
        "sentiment": "positive",
        "fields": {
            "appointment_date": "2026-11-24",
            "patient_name": "Ada Lovelace",
            "email": "ada@example.com",
            "new_patient": True,
            "visit_type": "cleaning",
        },
        "provider": "offline",
        "model": "rules",
    }
    assert call.turns.get(turn_number=4).ended_at == T0 + timedelta(seconds=25)
    assert again.processed_at == call.processed_at
    [transcript] = sent(tenant, "transcript.completed")
    [analyzed] = sent(tenant, "call.analyzed")
    assert [t["turn_number"] for t in transcript["turns"]] == [1, 2, 3, 4, 5]
    assert transcript["talk_stats"]["turns"] == 5
    assert analyzed["analysis"]["outcome"] == "appointment_booked"


def test_processing_runs_after_the_call_ends(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call = ended_call(tenant)
    call.refresh_from_db()
    assert call.processed_at is not None and call.analysis["provider"] == "offline"
    assert process_transcript(call_id=str(call.pk), tenant_id=str(call.tenant_id)) is True  # a redelivery: no-op


def test_analysis_can_be_turned_off(tenant):
    factories.WebhookEndpointFactory(tenant=tenant)
    call = call_process_transcript(call=ended_call(tenant, settings={"analysis": {"enabled": False}}))
    assert call.analysis == {} and call.processed_at is not None
    assert sent(tenant, "call.analyzed") == [] and len(sent(tenant, "transcript.completed")) == 1


def test_without_configured_outcomes_the_outcome_comes_from_how_the_call_ended(tenant):
    call = ended_call(tenant, settings={}, lines=[("caller", 0, 2, "This is terrible, I am so frustrated.")])
    result = call_process_transcript(call=call).analysis
    assert (result["outcome"], result["sentiment"], result["fields"]) == ("completed", "negative", {})


def test_missed_calls_are_processed_by_the_periodic_sweep(tenant, monkeypatch):
    call = ended_call(tenant)
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(ended_at=datetime.now(UTC) - timedelta(minutes=30))

    assert process_missed_transcripts() == 1
    assert process_missed_transcripts() == 0
    assert Call.objects.dangerously_unscoped().get(pk=call.pk).processed_at is not None


# --- with the LLM -------------------------------------------------------------------------------


class FakeAnthropic:
    """POST /v1/messages answering with a tool_use block, as the Messages API does (or with `status`)."""

    def __init__(self, tool_input: dict, status: int = 200):
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                fake.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = {
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": analysis.TOOL_NAME, "input": tool_input}],
                    "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 20},
                }  # fmt: skip
                if status != 200:
                    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def anthropic_at(settings):
    servers = []

    def start(tool_input, status=200):
        server = FakeAnthropic(tool_input, status)
        servers.append(server)
        settings.ANTHROPIC_BASE_URL = server.url
        return server

    yield start
    for server in servers:
        server.close()


LLM_SETTINGS = {
    "llm": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
    "analysis": {**ANALYSIS, "instructions": "Be brief."},
}


def test_with_a_key_the_llm_fills_the_agents_schema(tenant, settings, anthropic_at):
    settings.ANTHROPIC_API_KEY = "fake-ant-platform-key"
    fields = {"appointment_date": "2026-11-24", "visit_type": "cleaning"}
    server = anthropic_at(
        {"summary": "Booked a cleaning.", "outcome": "appointment_booked", "sentiment": "positive", "fields": fields}
    )

    result = call_process_transcript(call=ended_call(tenant, settings=LLM_SETTINGS)).analysis

    assert result == {
        "summary": "Booked a cleaning.",
        "outcome": "appointment_booked",
        "sentiment": "positive",
        "fields": fields,
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
    }
    [request] = server.requests
    [tool] = request["tools"]
    assert request["tool_choice"] == {"type": "tool", "name": "record_call_analysis"}
    assert tool["input_schema"]["properties"]["fields"] == ANALYSIS["fields_schema"]
    assert tool["input_schema"]["properties"]["outcome"]["enum"] == ["appointment_booked", "information_only"]
    assert "Be brief." in request["system"] and "caller: Tuesday please" in request["messages"][0]["content"]


def test_the_tenants_own_key_is_used_before_the_platforms(tenant, settings, anthropic_at):
    settings.ANTHROPIC_API_KEY = ""
    factories.ProviderCredentialFactory(tenant=tenant, provider="anthropic", secret={"api_key": "fake-ant-tenant-000"})
    anthropic_at({"summary": "s", "outcome": "information_only", "sentiment": "neutral"})

    assert call_process_transcript(call=ended_call(tenant, settings=LLM_SETTINGS)).analysis["provider"] == "anthropic"


@pytest.mark.parametrize(
    ("tool_input", "status"),
    [({"summary": "s", "outcome": "not_an_outcome", "sentiment": "neutral"}, 200), ({}, 400)],
    ids=["answer-outside-the-schema", "api-error"],
)
def test_an_llm_failure_falls_back_to_the_offline_analysis(tenant, settings, anthropic_at, tool_input, status):
    settings.ANTHROPIC_API_KEY = "fake-ant-platform-key"
    anthropic_at(tool_input, status)

    result = call_process_transcript(call=ended_call(tenant, settings=LLM_SETTINGS)).analysis

    assert (result["provider"], result["outcome"]) == ("offline", "appointment_booked")
    assert result["fallback_reason"] in ("ValidationError", "BadRequestError")
