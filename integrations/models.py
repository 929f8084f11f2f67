"""Provider credentials (encrypted at rest), backend services of tenants, and the outbound-call audit."""

from django.db import models
from django.db.models import Q

from tenants.models import TenantOwnedModel, User


class ProviderCredential(TenantOwnedModel):
    """A tenant's secret for a provider or backend, encrypted with AES-256-GCM (see integrations.vault).

    The secret is a JSON object (e.g. {"api_key": "..."} or {"client_id": "...", "client_secret": "..."})
    encrypted as a whole; the tenant and credential ids are bound as associated data, so a ciphertext
    copied to another row or tenant does not decrypt.
    """

    class Provider(models.TextChoices):
        ANTHROPIC = "anthropic", "Anthropic"
        DEEPGRAM = "deepgram", "Deepgram"
        GOTOCONNECT = "gotoconnect", "GoToConnect"
        LIVEKIT = "livekit", "LiveKit"
        TWILIO = "twilio", "Twilio"
        HTTP = "http", "Generic HTTP (backend secret)"

    class Verification(models.TextChoices):
        UNVERIFIED = "unverified", "Not verified"
        VERIFIED = "verified", "Verified"
        FAILED = "failed", "Verification failed"

    name = models.CharField(
        max_length=100,
        help_text="How backend services refer to it: ${NAME} in a header or auth field. Letters, digits, _.",
    )
    provider = models.CharField(max_length=30, choices=Provider.choices)
    key_id = models.CharField(max_length=64, help_text="Which INTEGRATION_CRYPTO_KEY key encrypted it.")
    nonce = models.BinaryField(max_length=12)
    ciphertext = models.BinaryField()
    hint = models.CharField(max_length=16, blank=True, help_text="The secret's last characters, shown as ••••abcd.")
    verification = models.CharField(max_length=20, choices=Verification.choices, default=Verification.UNVERIFIED)
    verification_message = models.TextField(blank=True, help_text="The provider's answer at the last verification.")
    verified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="credential_unique_tenant_name"),
            models.CheckConstraint(
                condition=Q(name__regex=r"^[A-Za-z_][A-Za-z0-9_]{0,99}\Z"), name="credential_name_format"
            ),
            models.CheckConstraint(
                condition=Q(provider__in=["anthropic", "deepgram", "gotoconnect", "livekit", "twilio", "http"]),
                name="credential_provider_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    @property
    def masked(self) -> str:
        return f"••••{self.hint}" if self.hint else "••••"


class BackendService(TenantOwnedModel):
    """A tenant backend the platform calls (tools, webhooks): an `integration.services` entry."""

    class Method(models.TextChoices):
        GET = "GET"
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"
        DELETE = "DELETE"

    name = models.SlugField(max_length=100, help_text="The service's name, used by tools and webhooks.")
    type = models.CharField(max_length=10, default="http", help_text="Only http is supported.")
    url = models.URLField(max_length=2000)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.POST)
    headers = models.JSONField(
        default=dict,
        blank=True,
        help_text='Header values may reference vault secrets: {"Authorization": "Bearer ${TOKEN}"}.',
    )
    timeout_seconds = models.FloatField(default=5.0, help_text="Per-attempt timeout (seed default 5 s).")
    retry = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"max_attempts": 3, "initial_backoff": "100ms", "max_backoff": "5s", "backoff_multiplier": 2.0, '
        '"retryable_http_codes": [429, 502, 503, 504]}',
    )
    rate_limit = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"requests_per_second": 50, "burst": 10, "per_call_rps": 5, "queue_depth": 100}',
    )
    circuit_breaker = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"threshold": 5, "timeout": "30s", "half_open_requests": 3, "success_threshold": 3}',
    )
    tls = models.JSONField(
        default=dict,
        blank=True,
        help_text='mTLS: {"cert": "${CLIENT_CERT}", "key": "${CLIENT_KEY}", "ca": "${CA_CERT}"}: PEMs from the vault.',
    )
    auth = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"type": "oauth2", "token_url": ..., "client_id": "${ID}", "client_secret": "${SECRET}", "scopes": [...]}',
    )
    logging = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"include_payload": false, "include_headers": false, "redact": ["password", "ssn", "credit_card"]}',
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="backend_unique_tenant_name"),
            models.CheckConstraint(condition=Q(type="http"), name="backend_type_http"),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gt=0, timeout_seconds__lte=300), name="backend_timeout_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OutboundRequest(TenantOwnedModel):
    """The audit row of one outbound call through the gateway (all attempts together)."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        HTTP_ERROR = "http_error", "HTTP error"
        TIMEOUT = "timeout", "Timeout"
        CONNECTION_ERROR = "connection_error", "Connection error"
        CIRCUIT_OPEN = "circuit_open", "Circuit open"
        RATE_LIMITED = "rate_limited", "Rate limited"
        CONFIG_ERROR = "config_error", "Configuration error"

    service = models.CharField(max_length=100, db_index=True)
    method = models.CharField(max_length=10)
    url = models.CharField(max_length=2000)
    call_session_id = models.CharField(max_length=64, blank=True, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    retry_count = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    request_headers = models.JSONField(null=True, blank=True, help_text="Only when the service logs headers; redacted.")
    request_body = models.JSONField(null=True, blank=True, help_text="Only when the service logs payloads; redacted.")
    response_body = models.JSONField(null=True, blank=True, help_text="Only when the service logs payloads; redacted.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "service", "-created_at"], name="outbound_tenant_service_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.service} → {self.outcome}"


class WebhookEndpoint(TenantOwnedModel):
    """Where a tenant receives signed event notifications (Standard Webhooks), and which events.

    The signing secrets (`whsec_…`) are sealed with the vault's AES-256-GCM keyring as one JSON object
    {"current": ..., "previous": ...}, with the tenant and endpoint bound as associated data; the
    previous secret still signs until `previous_secret_expires_at` (rotation overlap).
    """

    class DisabledReason(models.TextChoices):
        MANUAL = "manual", "Disabled by the tenant or staff"
        GONE = "gone", "The endpoint answered 410 Gone"
        FAILING = "failing", "Deliveries failed for too long"

    url = models.URLField(max_length=2000, help_text="Receives a POST per event; https in production.")
    description = models.CharField(max_length=255, blank=True)
    event_types = models.JSONField(
        default=list, help_text='Event types from the catalog, e.g. ["call.ended", "call.analyzed"]; ["*"] for all.'
    )
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=20, choices=DisabledReason.choices, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    secret_key_id = models.CharField(max_length=64, help_text="Which INTEGRATION_CRYPTO_KEY key sealed the secrets.")
    secret_nonce = models.BinaryField(max_length=12)
    secret_ciphertext = models.BinaryField()
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then deliveries are signed with the previous secret too."
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success; empty while healthy."
    )
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["tenant", "enabled"], name="webhook_tenant_enabled_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(enabled=True, disabled_reason="") | Q(enabled=False), name="webhook_enabled_has_no_reason"
            ),
        ]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class WebhookDelivery(TenantOwnedModel):
    """One event for one endpoint: the outbox row, written in the transaction that caused the event.

    `message_id` is the `webhook-id` header, the same on every attempt and replay so receivers can
    de-duplicate; `body` is the exact JSON sent every time. Pending rows are attempted when
    `next_attempt_at` has passed: by the task enqueued after commit, else by the sweeper.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64, help_text="The webhook-id header: msg_…, stable across retries.")
    event_type = models.CharField(max_length=64)
    body = models.TextField(help_text="The JSON body {type, timestamp, data}, byte for byte as signed and sent.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts made, replays included.")
    cycle_attempts = models.PositiveIntegerField(
        default=0, help_text="Attempts since the event or its last replay; the retry policy counts these."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatch_token = models.UUIDField(null=True, blank=True, help_text="Set while a task for it waits in the queue.")
    claim_token = models.UUIDField(null=True, blank=True, help_text="The batch attempting it now.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"  # not Django's "deliverys"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due_idx"),
            models.Index(fields=["endpoint", "status", "created_at"], name="webhook_delivery_endpoint_idx"),
            models.Index(fields=["tenant", "-created_at"], name="webhook_delivery_tenant_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "message_id"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed"]), name="webhook_delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(delivered_at__isnull=False),
                name="webhook_delivery_success_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id} ({self.status})"


class WebhookAttempt(TenantOwnedModel):
    """One HTTP attempt of a delivery: what came back and how long it took."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded (2xx)"
        HTTP_ERROR = "http_error", "HTTP error"
        GONE = "gone", "410 Gone (endpoint disabled)"
        TIMEOUT = "timeout", "Timed out"
        CONNECTION_ERROR = "connection_error", "Connection error"
        REFUSED = "refused", "Refused before sending (address or configuration)"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="1 for the first attempt of the delivery, then 2, 3…")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="The first characters of the response body.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"
