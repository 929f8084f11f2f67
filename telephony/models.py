"""Phone numbers: the dialled number decides which tenant and agent answer."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from agents.models import Agent
from core.validators import E164_PATTERN, validate_e164
from tenants.models import TenantOwnedModel, User


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


class GoToConnection(TenantOwnedModel):
    """A tenant's GoTo Connect grant: the GoTo user who consented, the line the bridge uses, the sealed tokens.

    GoTo's OAuth server grants only authorization code + refresh token, so a tenant admin consents once
    ("Connect GoTo") and the platform refreshes from then on (docs/telephony.md#connecting-goto). The
    refresh token (and the current access token) are sealed with the credential vault, bound to the
    tenant and this row's id; they never appear in plain text in the database, the admin, logs or answers.
    """

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        RECONNECT_REQUIRED = "reconnect_required", "Reconnect required"
        DISCONNECTED = "disconnected", "Disconnected"

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CONNECTED)
    account_key = models.CharField(max_length=64, help_text="The GoTo account key (GET /admin/rest/v1/me).")
    organization_id = models.CharField(
        max_length=255, help_text="The line's organization.id at GoTo: the organizationId web calls need."
    )
    extension = models.CharField(max_length=32, help_text="The extension number of the line the bridge uses.")
    line_id = models.CharField(max_length=255, help_text="The id of that line at GoTo (GET /users/v1/lines).")
    principal = models.CharField(max_length=255, blank=True, help_text="The GoTo user who consented.")
    scopes = models.TextField(blank=True, help_text="The scopes GoTo granted, space-separated.")
    # The vault's seal of {"refresh_token", "access_token"}; empty once disconnected.
    key_id = models.CharField(max_length=64, blank=True, help_text="Which INTEGRATION_CRYPTO_KEY key sealed it.")
    nonce = models.BinaryField(max_length=12, default=bytes)
    ciphertext = models.BinaryField(default=bytes)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the grant stopped working (no secrets).")
    connected_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-connected_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="goto_connection_one_per_tenant"),
            models.CheckConstraint(
                condition=Q(status__in=["connected", "reconnect_required", "disconnected"]),
                name="goto_connection_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"GoTo ext {self.extension} ({self.get_status_display()})"
