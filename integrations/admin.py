"""Staff admin for provider credentials, backend services and the outbound-request audit (webhooks: webhooks/admin.py).

Credentials are write-only here: the admin shows the mask (••••abcd), never a secret or its ciphertext,
and a secret typed into the form is verified with its provider before it is stored.
"""

from collections import Counter

from django import forms
from django.contrib import admin, messages

from core.admin_base import RecordAdminMixin, TenantOwnedAdmin, adopt_created, pretty_json
from core.errors import ApplicationError
from integrations import services, vault, verification
from integrations.config import ConfigError, service_from_row
from integrations.models import BackendService, OutboundRequest, ProviderCredential
from integrations.webhooks import admin as webhook_admin  # noqa: F401  (registers the webhook admins)

# ---------------------------------------------------------------------------------------------------
# Provider credentials
# ---------------------------------------------------------------------------------------------------


def _secret_input(label: str, help_text: str) -> forms.CharField:
    # render_value=False: a secret typed in is never sent back, not even after a validation error.
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
    return forms.CharField(label=label, required=False, strip=True, widget=widget, help_text=help_text)


def _plain_input(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(label=label, required=False, strip=True, help_text=help_text)


ADD_HELP = "Fill in the provider's fields; they are verified with the provider before anything is saved."
REPLACE_HELP = "Leave empty to keep the stored secret. To replace it, fill in all of the provider's fields."
SECRET_FORM_FIELDS = ("api_key", "api_secret", "url", "client_id", "client_secret", "value", "check_url", "header")


class CredentialAdminForm(forms.ModelForm):
    """Tenant, name and provider, plus the provider's secret fields (write-only).

    On a change form, leaving every secret field empty keeps the stored secret; filling any of them
    replaces the whole secret, so all of the provider's fields must be given again.
    """

    api_key = _secret_input("API key", "Anthropic, Deepgram, LiveKit.")
    api_secret = _secret_input("API secret", "LiveKit.")
    url = _plain_input("Server URL", "LiveKit, e.g. wss://example.livekit.cloud.")
    client_id = _secret_input("Client id", "GoToConnect OAuth client.")
    client_secret = _secret_input("Client secret", "GoToConnect OAuth client.")
    value = _secret_input("Value", "Generic HTTP: the token or key a backend service refers to as ${NAME}.")
    check_url = _plain_input("Check URL", "Generic HTTP, optional: a GET here must answer 2xx with the value.")
    header = _plain_input(
        "Header", "Generic HTTP, optional: a name (X-API-Key) or 'Name: text with <value>'. Default: Bearer."
    )

    class Meta:
        model = ProviderCredential
        fields = ("tenant", "name", "provider")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.secret: dict | None = None
        self.verification: verification.VerificationResult | None = None

    def clean(self):
        cleaned = super().clean()
        entered = {name: cleaned[name] for name in SECRET_FORM_FIELDS if cleaned.get(name)}
        provider = cleaned.get("provider")
        if (not self.instance._state.adding and not entered) or not provider or self.errors:
            return cleaned  # nothing to replace, or the form is refused anyway: do not call the provider
        try:
            self.secret = vault.validate_secret(provider, entered)
        except ApplicationError as exc:
            for path, problems in exc.fields.items():
                field = path.removeprefix("secret.")
                self.add_error(field if field in self.fields else None, problems)
            return cleaned
        self.verification = verification.verify(provider, self.secret)
        if self.verification.ok is False:
            self.add_error(None, self.verification.verdict(provider))
        return cleaned


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(TenantOwnedAdmin):
    form = CredentialAdminForm
    list_display = ("name", "tenant", "provider", "masked", "verification", "verified_at", "key_id", "created_at")
    list_filter = ("provider", "verification", "key_id")
    search_fields = ("name", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("tenant__name", "name")
    create_only_fields = ("tenant", "provider")
    readonly_fields = (
        "masked",
        "verification",
        "verification_message",
        "verified_at",
        "key_id",
        "created_by",
        "created_at",
        "updated_at",
    )
    actions = ("verify_credentials",)

    def get_fieldsets(self, request, obj=None):
        secret_fields = SECRET_FORM_FIELDS
        if obj is None:
            return (
                (None, {"fields": ("tenant", "name", "provider")}),
                ("Secret", {"fields": secret_fields, "description": ADD_HELP}),
            )
        return (
            (None, {"fields": ("tenant", "name", "provider", "masked")}),
            ("Replace the secret", {"fields": secret_fields, "description": REPLACE_HELP, "classes": ("collapse",)}),
            ("Verification", {"fields": ("verification", "verification_message", "verified_at")}),
            ("Encryption", {"fields": ("key_id", "created_by", "created_at", "updated_at")}),
        )

    def save_model(self, request, obj, form, change):
        actor = {"actor_user": request.user}
        if not change:
            created = services.credential_create(
                tenant=obj.tenant,
                name=obj.name,
                provider=obj.provider,
                secret=form.secret,
                actor=actor,
                checked=form.verification,
            )
            return adopt_created(obj, created)
        if "name" in form.changed_data:
            # Only the name (it is not bound into the ciphertext): never write back a secret loaded earlier.
            obj.save(update_fields=["name", "updated_at"])
        if form.secret is not None:
            services.credential_update_secret(
                credential=obj, secret=form.secret, actor=actor, checked=form.verification
            )

    def delete_model(self, request, obj):
        services.credential_delete(credential=obj, actor={"actor_user": request.user})

    def delete_queryset(self, request, queryset):
        for credential in queryset.select_related("tenant"):
            services.credential_delete(credential=credential, actor={"actor_user": request.user})

    @admin.action(description="Verify selected credentials", permissions=["change"])
    def verify_credentials(self, request, queryset):
        outcomes = Counter()
        for credential in queryset.select_related("tenant"):
            try:
                credential = services.credential_verify(credential=credential, actor={"actor_user": request.user})
            except vault.VaultError as exc:
                outcomes["unreadable"] += 1
                self.message_user(request, exc.message, messages.ERROR)
                continue
            outcomes[credential.verification] += 1
            if credential.verification == ProviderCredential.Verification.FAILED:
                self.message_user(request, f"{credential.name}: {credential.verification_message}", messages.WARNING)
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        self.message_user(request, f"Verification: {summary or 'nothing selected'}.", messages.INFO)


# ---------------------------------------------------------------------------------------------------
# Backend services
# ---------------------------------------------------------------------------------------------------

# The first part of a ConfigError path (after the service name) -> the form field it belongs to.
CONFIG_FIELDS = {
    "url": "url",
    "method": "method",
    "headers": "headers",
    "timeout": "timeout_seconds",
    "retry": "retry",
    "rate_limit": "rate_limit",
    "circuit_breaker": "circuit_breaker",
    "tls": "tls",
    "auth": "auth",
    "logging": "logging",
}


class BackendServiceAdminForm(forms.ModelForm):
    """Every JSON setting is validated by integrations.config, the parser the gateway runs on."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = BackendService
        fields = (
            "tenant", "name", "url", "method", "enabled", "timeout_seconds", "headers", "auth", "tls", "retry",
            "rate_limit", "circuit_breaker", "logging",
        )  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned  # a field is missing or not JSON: the parser would only repeat that
        row = BackendService(**{name: cleaned.get(name) for name in self._meta.fields if name != "tenant"})
        try:
            service_from_row(row)
        except ConfigError as exc:
            for path, message in exc.errors:
                relative = path.removeprefix(f"{row.name}.")
                field = CONFIG_FIELDS.get(relative.split(".")[0])
                self.add_error(field if field in self.fields else None, f"{relative}: {message}")
        return cleaned


@admin.register(BackendService)
class BackendServiceAdmin(TenantOwnedAdmin):
    form = BackendServiceAdminForm
    list_display = ("name", "tenant", "method", "url", "enabled", "timeout_seconds", "updated_at")
    list_filter = ("enabled", "method")
    search_fields = ("name", "url", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("tenant__name", "name")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("tenant", "name", "url", "method", "enabled", "timeout_seconds")}),
        (
            "Headers, authentication and TLS (JSON)",
            {
                "fields": ("headers", "auth", "tls"),
                "description": "Secrets are never written here: refer to the tenant's vault with ${NAME} "
                "or ${NAME.field}.",
            },
        ),
        ("Retry, rate limit and circuit breaker (JSON)", {"fields": ("retry", "rate_limit", "circuit_breaker")}),
        ("Logging (JSON)", {"fields": ("logging",)}),
        ("Overview", {"fields": ("created_at", "updated_at")}),
    )


# ---------------------------------------------------------------------------------------------------
# Outbound requests (the gateway's audit)
# ---------------------------------------------------------------------------------------------------


class ServiceFilter(admin.SimpleListFilter):
    """The configured services' names: a bounded list, unlike a SELECT DISTINCT over the whole request log."""

    title = "service"
    parameter_name = "service"

    def lookups(self, request, model_admin):
        names = BackendService.objects.dangerously_unscoped().order_by("name").values_list("name", flat=True).distinct()
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset.filter(service=self.value()) if self.value() else queryset


@admin.register(OutboundRequest)
class OutboundRequestAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Written by the gateway, one row per outbound call; headers and bodies only as redacted there."""

    list_display = (
        "created_at", "tenant", "service", "method", "outcome", "status_code", "duration_ms", "retry_count",
    )  # fmt: skip
    list_filter = (ServiceFilter, "outcome")
    search_fields = ("service", "url", "call_session_id", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    fields = (
        "created_at",
        "tenant",
        "service",
        "method",
        "url",
        "call_session_id",
        "outcome",
        "status_code",
        "duration_ms",
        "retry_count",
        "error",
        "request_headers_pretty",
        "request_body_pretty",
        "response_body_pretty",
    )

    @admin.display(description="Request headers")
    def request_headers_pretty(self, obj):
        return pretty_json(obj.request_headers)

    @admin.display(description="Request body")
    def request_body_pretty(self, obj):
        return pretty_json(obj.request_body)

    @admin.display(description="Response body")
    def response_body_pretty(self, obj):
        return pretty_json(obj.response_body)
