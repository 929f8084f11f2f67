"""How the dashboard words a call: its title, its outcome badge with the reason in words, its duration.

One place, so the overview, the calls list, the call page, the live page (through the live socket's
call summary) and the agent page say the same thing about the same call. A call that never
connected is never shown as a green "Ended": it is "Failed" (red) when something went wrong, or
"Not connected" (neutral) when the other side did not pick up.
"""

from dataclasses import asdict, dataclass

from calls.models import Call
from calls.state_machine import CallStatus

# What `Call.metadata["failure_reason"]` codes mean, in words (telephony services, the bridge, the carriers).
FAILURE_REASONS = {
    "telephony_not_configured": "No phone carrier is configured on this deployment, so the call was not placed",
    "goto_not_configured": "No phone carrier is configured on this deployment, so the call was not placed",
    "no_answer": "Nobody answered",
    "busy": "The line was busy",
    "voicemail": "Voicemail answered",
    "rejected": "The call was rejected",
    "call_rejected": "The call was rejected",
    "setup_timeout": "The call could not be set up in time",
    "pbx_auth_failed": "The phone carrier did not accept our credentials",
    "pbx_unauthorized": "The phone carrier did not accept our credentials",
    "pbx_token_unavailable": "Could not reach the phone carrier to sign in",
    "pbx_unavailable": "Could not reach the phone carrier",
    "pbx_rate_limited": "The phone carrier is limiting how many calls we place; try again shortly",
    "pbx_request_rejected": "The phone carrier refused to place the call",
    "pbx_bad_response": "The phone carrier answered with something we could not read",
    "pbx_error": "The phone carrier reported an error",
    "unknown_number": "The dialled number is not one of ours",
    "unassigned_number": "The dialled number is not assigned to an agent",
    "tenant_suspended": "The tenant is suspended",
    "not_dialled": "No worker could dial the call in time",
}

# End reasons of a call that never became a conversation: the other side's doing (neutral) or a fault (red).
NOT_CONNECTED_REASONS = frozenset(
    {Call.EndReason.NO_ANSWER, Call.EndReason.BUSY, Call.EndReason.VOICEMAIL, Call.EndReason.CANCELED}
)
FAILED_REASONS = frozenset({Call.EndReason.ERROR, Call.EndReason.SETUP_TIMEOUT, Call.EndReason.REJECTED})

# The analysis' own outcome codes (calls.analysis), in words; configured outcomes are worded from their name.
ANALYSIS_OUTCOMES = {
    "not_connected": "Not connected",
    "completed": "Completed",
    "transferred": "Transferred to a human",
    "abandoned": "Abandoned: the caller hung up within seconds",
    "failed": "Failed",
    "requests_failed": "Not served: every request to your backend failed",
    "unknown": "Unknown",
}


@dataclass(frozen=True)
class Outcome:
    """A call's badge: `label` (Ended, Failed, Not connected, or the live status), `tone`, `reason` in words."""

    label: str
    tone: str  # ok | failed | neutral | live | attention
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def duration_text(seconds) -> str:
    """The one duration format of the dashboard: 82 -> "1:22", 3725 -> "1:02:05", None -> ""."""
    if seconds is None:
        return ""
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def failure_text(call: Call) -> str:
    """Why the call failed or did not connect, in words; "" for a call that connected and ended normally."""
    code = (call.metadata or {}).get("failure_reason") or ""
    if code:
        return FAILURE_REASONS.get(code, f"Failed: {code.replace('_', ' ')}")
    if call.end_reason == Call.EndReason.ERROR:
        return "The call ended with an error"
    if call.end_reason and (call.end_reason in NOT_CONNECTED_REASONS | FAILED_REASONS or not call.answered_at):
        return Call.EndReason(call.end_reason).label
    return ""


def call_outcome(call: Call) -> Outcome:
    """The badge every page shows for this call."""
    if call.status != CallStatus.ENDED:
        attention = call.status in (CallStatus.ERROR, CallStatus.TRANSFERRING, CallStatus.ON_HOLD)
        return Outcome(label=call.get_status_display(), tone="attention" if attention else "live", reason="")
    reason = failure_text(call)
    if call.end_reason in NOT_CONNECTED_REASONS:
        return Outcome(label="Not connected", tone="neutral", reason=reason)
    failed_before_answer = bool((call.metadata or {}).get("failure_reason")) and not call.answered_at
    if call.end_reason in FAILED_REASONS or failed_before_answer:
        return Outcome(label="Failed", tone="failed", reason=reason)
    if not call.answered_at:
        return Outcome(label="Not connected", tone="neutral", reason=reason or "The call never connected")
    return Outcome(label="Ended", tone="ok", reason="")


def counterpart(call: Call) -> str:
    """The other party: who called in, or who we called."""
    if call.direction == Call.Direction.OUTBOUND:
        return call.to_number or "unknown number"
    return call.from_number or "browser"


def call_title(call: Call) -> str:
    """ "Call to +1555…" for outbound calls, "Call from +1555…" (or "Test call from the browser") inbound."""
    if call.direction == Call.Direction.OUTBOUND:
        return f"Call to {counterpart(call)}"
    return f"Call from {call.from_number}" if call.from_number else "Test call from the browser"


def shown_duration(call: Call) -> str:
    """The duration to show: "" for a call still live or one that never connected (not a misleading 0:00)."""
    if call.status != CallStatus.ENDED or not call.answered_at:
        return ""
    return duration_text(call.duration_seconds)


def analysis_outcome_text(code: str | None) -> str:
    if not code:
        return ""
    return ANALYSIS_OUTCOMES.get(code) or code.replace("_", " ").capitalize()


def call_view(call: Call) -> dict:
    """JSON-safe wording of a call for the live pages' JavaScript."""
    return {
        "title": call_title(call),
        "counterpart": counterpart(call),
        "outcome": call_outcome(call).as_dict(),
        "duration_text": shown_duration(call),
    }
