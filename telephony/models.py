"""Phone numbers: the dialled number decides which tenant and agent answer."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from agents.models import Agent
from core.validators import E164_PATTERN, validate_e164
from tenants.models import TenantOwnedModel


class PhoneNumber(TenantOwnedModel):
    """A number a tenant owns at the PBX, routed to one of its agents."""

    class Provider(models.TextChoices):
        GOTOCONNECT = "gotoconnect", "GoToConnect"
        TWILIO = "twilio", "Twilio"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        RELEASED = "released", "Released"

    e164 = models.CharField(
        "number",
        max_length=16,
        unique=True,
        validators=[validate_e164],
        help_text="E.164 format, e.g. +15551234567. Unique across the platform.",
    )
    friendly_name = models.CharField(max_length=100, blank=True)
    agent = models.ForeignKey(
        Agent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="phone_numbers",
        help_text="The agent that answers calls to this number. Empty: calls are rejected.",
    )
    provider = models.CharField(
        max_length=30,
        choices=Provider.choices,
        default=Provider.GOTOCONNECT,
        help_text="The carrier that serves this number: its calls arrive and are dialled through it.",
    )
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The number's id at the provider (GoToConnect line or DID id)."
    )
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.ACTIVE,
        help_text="Only active numbers take calls. Released numbers are kept for call history.",
    )

    class Meta:
        ordering = ["e164"]
        indexes = [models.Index(fields=["tenant", "status"], name="number_tenant_status_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(e164__regex=E164_PATTERN), name="number_e164_format"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "inactive", "released"]), name="number_status_valid"
            ),
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                condition=~Q(external_id=""),
                name="number_unique_provider_external_id",
            ),
        ]

    def __str__(self) -> str:
        return self.e164

    def clean(self) -> None:
        super().clean()
        if self.agent_id and self.tenant_id and self.agent is not None and self.agent.tenant_id != self.tenant_id:
            raise ValidationError({"agent": "This agent belongs to another tenant."})
