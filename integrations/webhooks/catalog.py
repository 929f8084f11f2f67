"""The documented catalog of webhook event types, with an example `data` object for each."""

from dataclasses import dataclass

CALL = {
    "call_id": "6f1c2b1e-5d1a-4c55-9a51-0f6d3c1f8a10",
    "agent_id": "0b8d4a77-2c3e-4f0e-8e55-3f4b7a9d2e61",
    "direction": "inbound",
    "from": "+15551234567",
    "to": "+15559876543",
}


TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    example: dict


EVENT_TYPES = {
    event.name: event
    for event in (
        EventType(
            "call.started",
            "A call began: an inbound call is ringing or an outbound call is dialling.",
            {**CALL, "status": "ringing", "started_at": "2026-11-22T10:30:00Z"},
        ),
        EventType(
            "call.ended",
            "A call ended, whatever the reason (also sent with call.failed for calls that failed).",
            {
                **CALL,
                "started_at": "2026-11-22T10:30:00Z",
                "answered_at": "2026-11-22T10:30:04Z",
                "ended_at": "2026-11-22T10:32:11Z",
                "duration_seconds": 127,
                "end_reason": "caller_hangup",
            },
        ),
        EventType(
            "call.failed",
            "A call ended without a conversation: error, setup timeout, no answer, busy or rejected.",
            {
                **CALL,
                "direction": "outbound",
                "started_at": "2026-11-22T10:30:00Z",
                "ended_at": "2026-11-22T10:30:00Z",
                "duration_seconds": 0,
                "end_reason": "error",
                "failure_reason": "telephony_not_configured",
            },
        ),
        EventType(
            "call.transferred",
            "A call was handed to a human (blind or warm transfer).",
            {**CALL, "transfer_type": "warm", "transferred_to": "ext:1001", "reason": "caller_request"},
        ),
        EventType(
            "transcript.completed",
            "The call's transcript is final, with talk-time statistics.",
            {
                "call_id": CALL["call_id"],
                "agent_id": CALL["agent_id"],
                "turns": [
                    {
                        "turn_number": 1,
                        "speaker": "agent",
                        "text": "Thanks for calling, how can I help?",
                        "started_at": "2026-11-22T10:30:04Z",
                        "ended_at": "2026-11-22T10:30:06Z",
                        "interrupted": False,
                    }
                ],
                "talk_stats": {"agent_seconds": 41.2, "caller_seconds": 55.0, "silence_seconds": 30.8, "turns": 14},
            },
        ),
        EventType(
            "call.analyzed",
            "Post-call analysis: summary, outcome, sentiment and the agent's structured fields.",
            {
                "call_id": CALL["call_id"],
                "agent_id": CALL["agent_id"],
                "analysis": {
                    "summary": "The caller booked a cleaning for Tuesday 9:00.",
                    "outcome": "appointment_booked",
                    "sentiment": "positive",
                    "fields": {"appointment_date": "2026-11-24", "new_patient": True},
                    "provider": "anthropic",
                },
            },
        ),
        EventType(
            "tool.failed",
            "A tool call to your backend failed or timed out during a call.",
            {
                "call_id": CALL["call_id"],
                "tool_call_id": "9a0e5c3d-7b1f-4e2a-8c6d-5f4e3d2c1b0a",
                "tool_name": "check_availability",
                "status": "timed_out",
                "error": "Service 'tool-check_availability' did not answer within 10s (1 attempt(s)).",
                "http_status": None,
                "duration_ms": 10004,
            },
        ),
        EventType(
            "usage.threshold_reached",
            "The tenant used 80% or 100% of its included minutes this month, or of its credit.",
            {
                "kind": "included_minutes",
                "threshold": 80,
                "period": "2026-11",
                "used_seconds": 24000,
                "allowance_seconds": 30000,
                "used_percent": 80.0,
            },
        ),
        EventType(
            TEST_EVENT,
            "A test event, sent only when someone asks for one (the dashboard's Send test event, to one "
            "endpoint, whatever it subscribes to): signed and retried like any other.",
            {
                "endpoint_id": "4c3b2a19-8d7e-4f60-9a5b-1c2d3e4f5a6b",
                "message": "This is a test event.",
                "sent_by": "alice",
            },
        ),
    )
}

ALL = "*"
