"""Reads for calls, always for one tenant."""

from django.db.models import Prefetch

from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from tenants.models import Tenant


def call_list(*, tenant: Tenant):
    return Call.objects.for_tenant(tenant).select_related("phone_number").order_by("-created_at", "-id")


def call_detail(*, tenant: Tenant, call_id) -> Call | None:
    """The call with its transcript, events and tool calls in order (four queries, however long the call)."""
    return (
        call_list(tenant=tenant)
        .prefetch_related(
            Prefetch("turns", queryset=TranscriptTurn.objects.order_by("turn_number")),
            Prefetch("events", queryset=CallEvent.objects.order_by("sequence")),
            Prefetch("tool_calls", queryset=ToolCall.objects.order_by("started_at", "id")),
        )
        .filter(pk=call_id)
        .first()
    )
