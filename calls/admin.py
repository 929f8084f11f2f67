"""Staff admin for calls and their records: transcript turns, events, tool calls and recordings.

Calls are records of what happened. Their status moves only through `calls.services.call_transition`
and the state machine, so the admin shows status, outcome and timing read-only, and nothing here is
added or deleted by hand.
"""

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.utils.html import format_html

from calls.models import Call, CallEvent, Recording, ToolCall, TranscriptTurn
from core.admin_base import (
    PlatformModelAdmin,
    ReadOnlyInline,
    RecordAdminMixin,
    admin_change_link,
    format_seconds,
    pretty_json,
    related_count,
)
from tenants.admin import register_tenant_records

# --- Inlines on the call page ----------------------------------------------------------------------


class TranscriptTurnInline(ReadOnlyInline):
    model = TranscriptTurn
    fields = ("turn_number", "speaker", "text", "confidence", "interrupted", "started_at")
    ordering = ("turn_number",)


class CallEventInline(ReadOnlyInline):
    model = CallEvent
    fields = ("sequence", "event_type", "occurred_at", "payload_json")
    ordering = ("sequence",)

    @admin.display(description="Payload")
    def payload_json(self, obj):
        return pretty_json(obj.payload)


class ToolCallInline(ReadOnlyInline):
    model = ToolCall
    fields = ("started_at", "tool_name", "status", "http_status", "duration_ms", "arguments_json", "result_json")
    ordering = ("started_at",)

    @admin.display(description="Arguments")
    def arguments_json(self, obj):
        return pretty_json(obj.arguments)

    @admin.display(description="Result")
    def result_json(self, obj):
        return pretty_json(obj.result)


def audio_player(recording: Recording) -> str:
    if not recording.file:
        return "—"
    return format_html('<audio controls preload="none" src="{}"></audio>', recording.file.url)


class RecordingInline(ReadOnlyInline):
    model = Recording
    fields = ("player", "format", "duration_seconds", "size_bytes", "expires_at")

    @admin.display(description="Audio")
    def player(self, obj):
        return audio_player(obj)


# --- Calls -----------------------------------------------------------------------------------------


@admin.register(Call)
class CallAdmin(PlatformModelAdmin):
    list_display = (
        "created_at",
        "tenant",
        "agent",
        "direction",
        "status",
        "from_number",
        "to_number",
        "duration",
        "turn_count",
        "end_reason",
    )
    list_filter = ("status", "direction", "end_reason")
    search_fields = ("from_number", "to_number", "external_call_id", "room_name", "tenant__name", "agent__name")
    list_select_related = ("tenant", "agent")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False  # a filtered page skips a second COUNT(*) over all calls
    fieldsets = (
        (
            "Call",
            {
                "fields": ("tenant", "agent", "phone_number", "direction", "status", "end_reason"),
                "description": "Status and outcome change only through the call state machine "
                "(calls.services.call_transition), never by hand.",
            },
        ),
        ("Numbers", {"fields": ("from_number", "to_number", "external_call_id", "room_name")}),
        ("Timing", {"fields": ("created_at", "started_at", "answered_at", "ended_at", "duration", "turn_count")}),
        ("Metadata (JSON)", {"fields": ("metadata",)}),
    )
    # Everything but the free-form metadata is the platform's record of the call.
    readonly_fields = tuple(field for field in flatten_fieldsets(fieldsets) if field != "metadata")
    inlines = (TranscriptTurnInline, CallEventInline, ToolCallInline, RecordingInline)

    def get_queryset(self, request):
        turns = related_count(TranscriptTurn.objects.dangerously_unscoped(), "call")
        return super().get_queryset(request).annotate(turn_count=turns)

    def has_add_permission(self, request):
        return False  # calls are created by the telephony flow (calls.services.call_create)

    def has_delete_permission(self, request, obj=None):
        return False  # call history and billing depend on it; recordings expire by retention

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, obj):
        if obj.duration_seconds is None:
            return "in progress" if obj.answered_at and obj.is_active else "—"
        return format_seconds(obj.duration_seconds)

    @admin.display(description="Turns", ordering="turn_count")
    def turn_count(self, obj):
        return obj.turn_count


# --- Call records on their own ---------------------------------------------------------------------


class CallRecordAdmin(RecordAdminMixin, PlatformModelAdmin):
    """A row of a call's history; a pasted call id lists all of that call's rows."""

    uuid_search_fields = ("pk", "call")
    list_select_related = ("tenant",)
    show_full_result_count = False

    @admin.display(description="Call", ordering="call__created_at")
    def call_link(self, obj):
        return admin_change_link(Call, obj.call_id, str(obj.call_id)[:8])


@admin.register(TranscriptTurn)
class TranscriptTurnAdmin(CallRecordAdmin):
    list_display = ("call_link", "turn_number", "speaker", "short_text", "interrupted", "started_at", "tenant")
    list_filter = ("speaker", "interrupted")
    search_fields = ("text",)
    ordering = ("-started_at",)
    fields = (
        "call",
        "tenant",
        "turn_number",
        "speaker",
        "text",
        "confidence",
        "interrupted",
        "started_at",
        "ended_at",
        "metadata",
    )

    @admin.display(description="Text")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(CallEvent)
class CallEventAdmin(CallRecordAdmin):
    list_display = ("occurred_at", "call_link", "sequence", "event_type", "tenant")
    list_filter = ("event_type",)
    search_fields = ("event_type",)
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at",)
    fields = ("call", "tenant", "sequence", "event_type", "occurred_at", "payload_json")

    @admin.display(description="Payload")
    def payload_json(self, obj):
        return pretty_json(obj.payload)


@admin.register(ToolCall)
class ToolCallAdmin(CallRecordAdmin):
    list_display = ("started_at", "call_link", "tool_name", "status", "http_status", "duration_ms", "tenant")
    list_filter = ("status",)
    search_fields = ("tool_name", "error")
    ordering = ("-started_at",)
    fields = (
        "call",
        "tenant",
        "turn",
        "tool_name",
        "status",
        "http_status",
        "error",
        "started_at",
        "ended_at",
        "duration_ms",
        "arguments_json",
        "result_json",
    )

    @admin.display(description="Arguments")
    def arguments_json(self, obj):
        return pretty_json(obj.arguments)

    @admin.display(description="Result")
    def result_json(self, obj):
        return pretty_json(obj.result)


@admin.register(Recording)
class RecordingAdmin(CallRecordAdmin):
    list_display = ("created_at", "call_link", "format", "duration", "size_bytes", "expires_at", "tenant")
    search_fields = ("file",)
    ordering = ("-created_at",)
    fields = (
        "call",
        "tenant",
        "player",
        "file",
        "format",
        "sample_rate",
        "channels",
        "duration",
        "size_bytes",
        "expires_at",
        "created_at",
    )

    @admin.display(description="Audio")
    def player(self, obj):
        return audio_player(obj)

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, obj):
        return format_seconds(obj.duration_seconds)


register_tenant_records(Call, "Calls", order=20)
