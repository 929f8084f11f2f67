"""Calls, their transcript turns, events, tool calls and recordings."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from agents.models import Agent
from calls.state_machine import CallStatus
from tenants.models import TenantOwnedModel


class Call(TenantOwnedModel):
    """One phone conversation, inbound or outbound. Status changes only through `calls.services`."""

    Status = CallStatus

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound"
        OUTBOUND = "outbound", "Outbound"

    class EndReason(models.TextChoices):
        CALLER_HANGUP = "caller_hangup", "Caller hung up"
        AGENT_HANGUP = "agent_hangup", "Agent ended the call"
        IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
        MAX_DURATION = "max_duration", "Maximum duration reached"
        SETUP_TIMEOUT = "setup_timeout", "Call setup timed out"
        TRANSFERRED = "transferred", "Transferred to a human"
        NO_ANSWER = "no_answer", "No answer"
        BUSY = "busy", "Busy"
        VOICEMAIL = "voicemail", "Voicemail"
        REJECTED = "rejected", "Rejected"
        CANCELED = "canceled", "Canceled before it was dialled"
        ERROR = "error", "Error"

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="calls")
    phone_number = models.ForeignKey(
        "telephony.PhoneNumber",  # by label: the telephony app sits above calls (calls.carriers reads it)
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="calls",
        help_text="The tenant's number used: dialled (inbound) or shown as caller id (outbound).",
    )
    direction = models.CharField(max_length=20, choices=Direction.choices, db_index=True)
    status = models.CharField(max_length=50, choices=CallStatus.choices, default=CallStatus.INITIAL, db_index=True)
    from_number = models.CharField(max_length=50, blank=True)
    to_number = models.CharField(max_length=50, blank=True)
    external_call_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="The PBX's (GoToConnect) id for this call."
    )
    room_name = models.CharField(max_length=255, blank=True, help_text="Media room: call-{tenant_id}-{call_id}.")
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds from answer to end (0 if never answered); set when the call ends."
    )
    end_reason = models.CharField(max_length=100, choices=EndReason.choices, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Caller context and provider details (JSON).")
    talk_stats = models.JSONField(
        default=dict, blank=True, help_text="Talk time per speaker, turns, interruptions (post-call processing)."
    )
    analysis = models.JSONField(
        default=dict, blank=True, help_text="Summary, outcome, sentiment and the agent's structured fields."
    )
    processed_at = models.DateTimeField(null=True, blank=True, help_text="When post-call processing finished.")
    dialed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Outbound: when the dial was sent to the carrier (its setup time runs from here).",
    )
    dial_due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Outbound, not dialled yet: when the sweep queues its dial task again if it is still initial "
        "(a lost task or a dead worker). Cleared once the call leaves initial.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="call_tenant_created_idx"),
            models.Index(fields=["tenant", "status"], name="call_tenant_status_idx"),
            models.Index(fields=["tenant", "direction"], name="call_tenant_direction_idx"),
            models.Index(fields=["tenant", "agent"], name="call_tenant_agent_idx"),
            models.Index(fields=["tenant", "started_at"], name="call_tenant_started_idx"),
            models.Index(fields=["external_call_id"], name="call_external_id_idx"),
            models.Index(
                fields=["dial_due_at"], name="call_dial_due_idx", condition=Q(status="initial", direction="outbound")
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(direction__in=["inbound", "outbound"]), name="call_direction_valid"),
            models.CheckConstraint(condition=Q(status__in=CallStatus.values), name="call_status_valid"),
            models.CheckConstraint(
                condition=~Q(status="ringing", direction="outbound"), name="call_ringing_is_inbound"
            ),
            models.CheckConstraint(
                condition=~Q(status="dialing", direction="inbound"), name="call_dialing_is_outbound"
            ),
            models.CheckConstraint(
                condition=~Q(status="ended") | Q(ended_at__isnull=False, duration_seconds__isnull=False),
                name="call_ended_has_end_time_and_duration",
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(answered_at__gte=F("started_at")),
                name="call_answered_after_start",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(started_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="call_ended_after_start",
            ),
            models.UniqueConstraint(
                fields=["external_call_id"],
                condition=Q(external_call_id__isnull=False),
                name="call_unique_external_call_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.from_number or '?'} → {self.to_number or '?'} ({self.status})"

    def clean(self) -> None:
        super().clean()
        if self.agent_id and self.tenant_id and self.agent.tenant_id != self.tenant_id:
            raise ValidationError({"agent": "This agent belongs to another tenant."})

    @property
    def is_active(self) -> bool:
        return self.status != CallStatus.ENDED


class TranscriptTurn(TenantOwnedModel):
    """One speaker's contribution, stored as it happens."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")

    class Speaker(models.TextChoices):
        CALLER = "caller", "Caller"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    turn_number = models.PositiveIntegerField(help_text="1, 2, 3… in the order the turns were spoken.")
    speaker = models.CharField(max_length=50, choices=Speaker.choices)
    text = models.TextField()
    confidence = models.FloatField(null=True, blank=True, help_text="STT confidence 0-1 for caller turns.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    interrupted = models.BooleanField(
        default=False, help_text="The caller talked over the agent; `text` is what was actually played."
    )
    metadata = models.JSONField(default=dict, blank=True, help_text="Per-turn latencies (ms) and provider details.")

    class Meta:
        ordering = ["call", "turn_number"]
        constraints = [
            models.UniqueConstraint(fields=["call", "turn_number"], name="turn_unique_call_turn_number"),
            models.CheckConstraint(condition=Q(turn_number__gte=1), name="turn_number_positive"),
            models.CheckConstraint(condition=Q(speaker__in=["caller", "agent", "system"]), name="turn_speaker_valid"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0.0, confidence__lte=1.0),
                name="turn_confidence_range",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="turn_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.turn_number} {self.speaker}: {self.text[:60]}"


class CallEvent(TenantOwnedModel):
    """An event of the call event catalog (docs/webhooks.md#event-catalog), stored in the order it happened on the call."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")

    class Type(models.TextChoices):
        CALL_RINGING = "call.ringing"
        CALL_DIALING = "call.dialing"
        CALL_CONNECTED = "call.connected"
        CALL_STATUS_CHANGED = "call.status_changed"
        CALL_ENDED = "call.ended"
        CALL_FAILED = "call.failed"
        CALL_TRANSFER_REQUESTED = "call.transfer_requested"
        CALL_TRANSFERRED = "call.transferred"
        CALL_TRANSFER_FAILED = "call.transfer_failed"
        CALL_HELD = "call.held"
        CALL_RESUMED = "call.resumed"
        CALL_MERGED = "call.merged"
        ROOM_READY = "room.ready"
        AGENT_JOINED = "agent.joined"
        TRANSCRIPT_TURN = "transcript.turn"
        TOOL_CALLED = "tool.called"
        USAGE_MINUTE = "usage.minute"

    sequence = models.PositiveIntegerField(help_text="Position of the event within its call (1, 2, 3…).")
    event_type = models.CharField(max_length=64, choices=Type.choices, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["call", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["call", "sequence"], name="event_unique_call_sequence"),
            models.CheckConstraint(condition=Q(sequence__gte=1), name="event_sequence_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.sequence}"


class ToolCall(TenantOwnedModel):
    """One tool the agent called during the call, with what went in and came out."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="tool_calls")

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out"

    turn = models.ForeignKey(
        TranscriptTurn, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    tool_name = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Your backend's HTTP status.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["call", "started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "timed_out"]), name="toolcall_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")), name="toolcall_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"


class Recording(TenantOwnedModel):
    """The call's audio, both legs mixed, kept per the retention policy (docs/billing.md#retention)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="recordings")
    file = models.FileField(upload_to="recordings/%Y/%m/%d/")
    format = models.CharField(max_length=10, default="wav")
    sample_rate = models.PositiveIntegerField(default=48000)
    channels = models.PositiveSmallIntegerField(default=1)
    duration_seconds = models.FloatField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Deleted by the retention task after this time.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["call"], name="recording_one_per_call"),
            models.CheckConstraint(condition=Q(channels__in=[1, 2]), name="recording_channels_valid"),
        ]

    def __str__(self) -> str:
        return f"Recording of {self.call_id}"
