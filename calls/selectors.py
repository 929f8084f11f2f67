"""Reads for calls, always for one tenant."""

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Prefetch

from calls.models import Call, CallEvent, Recording, ToolCall, TranscriptTurn
from calls.state_machine import CallStatus
from core.api.render import api_values
from tenants.models import Tenant

CALL_FIELDS = (
    "id", "agent_id", "phone_number_id", "direction", "status", "from_number", "to_number", "external_call_id",
    "room_name", "started_at", "answered_at", "ended_at", "duration_seconds", "end_reason", "metadata", "created_at",
    "talk_stats", "analysis", "processed_at",
)  # fmt: skip
TURN_FIELDS = ("turn_number", "speaker", "text", "confidence", "started_at", "ended_at", "interrupted", "metadata")
EVENT_FIELDS = ("sequence", "event_type", "payload", "occurred_at")
TOOL_CALL_FIELDS = (
    "id", "tool_name", "arguments", "result", "status", "error", "http_status", "started_at", "ended_at", "duration_ms",
)  # fmt: skip


def call_list(*, tenant: Tenant):
    return Call.objects.for_tenant(tenant).order_by("-created_at", "-id")


def _has_recording(tenant: Tenant) -> Exists:
    return Exists(Recording.objects.for_tenant(tenant).filter(call=OuterRef("pk")).exclude(file=""))


def call_list_with_recording(*, tenant: Tenant):
    """The calls as the API shows them: each with `has_recording` (a stored audio file), in the same query."""
    return call_list(tenant=tenant).annotate(has_recording=_has_recording(tenant))


def call_recording(*, tenant: Tenant, call_id) -> Recording | None:
    """The call's recording, if it has one with a file."""
    return Recording.objects.for_tenant(tenant).filter(call_id=call_id).exclude(file="").first()


def call_detail(*, tenant: Tenant, call_id) -> Call | None:
    """The call with its transcript, events and tool calls in order (four queries, however long the call)."""
    return (
        Call.objects.for_tenant(tenant)
        .annotate(has_recording=_has_recording(tenant))
        .prefetch_related(
            Prefetch("turns", queryset=TranscriptTurn.objects.order_by("turn_number")),
            Prefetch("events", queryset=CallEvent.objects.order_by("sequence")),
            Prefetch("tool_calls", queryset=ToolCall.objects.order_by("started_at", "id")),
        )
        .filter(pk=call_id)
        .first()
    )


def call_detail_data(*, tenant: Tenant, call_id) -> dict | None:
    """The same as call_detail, as plain API values without building model objects.

    GET /v1/calls/{id} is the hottest read (live dashboards poll it); reading values instead of
    instances and serializers makes it several times cheaper. The API test checks it matches the
    serializer's output field for field. `has_recording` is the API's to turn into `recording_url`.
    """
    calls = Call.objects.for_tenant(tenant).filter(pk=call_id).annotate(has_recording=_has_recording(tenant))
    call = calls.values(*CALL_FIELDS, "has_recording").first()
    if call is None:
        return None
    children = {
        "transcript": TranscriptTurn.objects.for_tenant(tenant)
        .filter(call_id=call_id)
        .order_by("turn_number")
        .values(*TURN_FIELDS),
        "events": CallEvent.objects.for_tenant(tenant)
        .filter(call_id=call_id)
        .order_by("sequence")
        .values(*EVENT_FIELDS),
        "tool_calls": ToolCall.objects.for_tenant(tenant)
        .filter(call_id=call_id)
        .order_by("started_at", "id")
        .values(*TOOL_CALL_FIELDS),
    }
    data = api_values(call)
    for name, rows in children.items():
        data[name] = [api_values(row) for row in rows]
    return data


def call_list_active(*, tenant: Tenant):
    """The tenant's calls that have not ended, newest first (what the live page shows)."""
    return call_list(tenant=tenant).exclude(status=CallStatus.ENDED).select_related("agent")


# --- what the bridge reads about its call ------------------------------------------------------------


@dataclass
class BridgeCall:
    """What the bridge needs to know about its call, read once from the database."""

    call_id: str
    tenant_id: str
    agent_id: str
    agent_name: str
    direction: str
    room_name: str
    external_call_id: str | None = None
    our_number: str = ""
    voicemail_message: str = ""
    metadata: dict = field(default_factory=dict)


def bridge_call(call: Call) -> BridgeCall:
    caller = call.from_number if call.direction == Call.Direction.INBOUND else call.to_number
    ours = call.to_number if call.direction == Call.Direction.INBOUND else call.from_number
    return BridgeCall(
        call_id=str(call.pk),
        tenant_id=str(call.tenant_id),
        agent_id=str(call.agent_id),
        agent_name=call.agent.name,
        direction=call.direction,
        room_name=call.room_name,
        external_call_id=call.external_call_id,
        our_number=ours,
        voicemail_message=call.agent.voicemail_message,
        metadata={**(call.metadata or {}), "caller_number": caller},
    )


def bridge_call_load(*, call_id, tenant_id) -> BridgeCall | None:
    """The tenant's call for the bridge (None if it is not that tenant's)."""
    call = Call.objects.for_tenant(tenant_id).select_related("agent").filter(pk=call_id).first()
    return bridge_call(call) if call is not None else None


def call_by_external_id(external_id: str) -> tuple[str, str, str] | None:
    """(call id, tenant id, status) of the call a carrier knows by `external_id` (unique on the platform)."""
    found = (
        Call.objects.dangerously_unscoped()
        .filter(external_call_id=external_id)
        .values("pk", "tenant_id", "status")
        .first()
    )
    return (str(found["pk"]), str(found["tenant_id"]), found["status"]) if found else None


def call_by_id_across_tenants(call_id) -> tuple[str, str, str] | None:
    """(call id, tenant id, status) by id alone: only for a carrier leg whose tenant was not recorded."""
    found = Call.objects.dangerously_unscoped().filter(pk=call_id).values("pk", "tenant_id", "status").first()
    return (str(found["pk"]), str(found["tenant_id"]), found["status"]) if found else None


def call_status(*, call_id, tenant_id) -> tuple[str, str, str] | None:
    found = Call.objects.for_tenant(tenant_id).filter(pk=call_id).values("pk", "tenant_id", "status").first()
    return (str(found["pk"]), str(found["tenant_id"]), found["status"]) if found else None


def last_transfer_request(*, call_id, tenant_id) -> dict | None:
    """The payload of the call's latest `call.transfer_requested`, or None."""
    requested = CallEvent.objects.for_tenant(tenant_id).filter(
        call_id=call_id, event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED
    )
    event = requested.order_by("-sequence").first()
    return event.payload if event is not None else None
