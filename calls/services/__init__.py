"""Every write to a call and its records (Call, TranscriptTurn, CallEvent, ToolCall): nothing else writes them.

- `lifecycle`: create, status changes through the state machine, the event log, notes, the end, the sweep;
- `records`: transcript turns and tool calls as the session stores them;
- `outbound`: starting a call (stored intent), dialling once through the carrier interface, lost-dial sweeps;
- `inbound`: a call ringing on one of the tenant's numbers, a browser test call;
- `control`: transfer and end requests on a live call.
"""

from calls.services.control import TRANSFER_TYPES, call_end_request, call_transfer_request, transfer_destination
from calls.services.inbound import CallRejected, browser_call_create, inbound_call_start
from calls.services.lifecycle import (
    STATUS_EVENTS,
    call_carrier_ended,
    call_check_allowed,
    call_create,
    call_end,
    call_event,
    call_event_record,
    call_mark_connected,
    call_note,
    call_set_external_id,
    call_transition,
    calls_end_stuck,
    room_name_for,
)
from calls.services.outbound import (
    OUTBOUND_FAILURES,
    call_initiate,
    call_start_outbound,
    calls_abandon_undialled,
    calls_claim_due_dials,
    dial_enqueue,
    dial_lease,
    outbound_failed,
)
from calls.services.records import tool_call_record, turn_next_number, turn_record

__all__ = [
    "OUTBOUND_FAILURES",
    "STATUS_EVENTS",
    "TRANSFER_TYPES",
    "CallRejected",
    "browser_call_create",
    "call_carrier_ended",
    "call_check_allowed",
    "call_create",
    "call_end",
    "call_end_request",
    "call_event",
    "call_event_record",
    "call_initiate",
    "call_mark_connected",
    "call_note",
    "call_set_external_id",
    "call_start_outbound",
    "call_transfer_request",
    "call_transition",
    "calls_abandon_undialled",
    "calls_claim_due_dials",
    "calls_end_stuck",
    "dial_enqueue",
    "dial_lease",
    "inbound_call_start",
    "outbound_failed",
    "room_name_for",
    "tool_call_record",
    "transfer_destination",
    "turn_next_number",
    "turn_record",
]
