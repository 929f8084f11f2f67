"""DEMO ONLY: the demo practice's appointments, and the answers it gave, kept for the platform's retries."""

from django.db import models
from django.db.models import Q

from tenants.models import TenantOwnedModel
from voiceapp.demo_backend.practice import SERVICES


class DemoBooking(TenantOwnedModel):
    """An appointment in the demo practice's calendar; a cancelled one keeps its row and frees its slot."""

    reference = models.CharField(max_length=12, help_text="Read to the caller, e.g. DD4821.")
    name = models.CharField(max_length=100)
    day = models.DateField()
    start = models.TimeField()
    service = models.CharField(max_length=20, choices=[(s, s) for s in SERVICES])
    reason = models.CharField(max_length=200, blank=True)
    call_id = models.UUIDField(null=True, blank=True, help_text="The platform call that booked it.")
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["day", "start"]
        constraints = [
            # Two callers racing for one slot: the second insert fails and is told the slot is taken.
            models.UniqueConstraint(
                fields=["tenant", "day", "start"],
                condition=Q(cancelled_at__isnull=True),
                name="demo_booking_one_per_slot",
            ),
            models.UniqueConstraint(fields=["tenant", "reference"], name="demo_booking_unique_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.name}, {self.day} {self.start:%H:%M}"


class DemoToolReply(TenantOwnedModel):
    """The answer to one tool call, by its Idempotency-Key: a retry of the call gets the same answer again."""

    key = models.CharField(max_length=200)
    tool = models.CharField(max_length=64)
    reply = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="demo_tool_reply_unique_key")]

    def __str__(self) -> str:
        return f"{self.tool} {self.key}"
