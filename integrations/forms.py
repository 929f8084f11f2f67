"""Dashboard forms of the Developers pages: API keys, webhook endpoints, provider credentials, backends.

The forms check the shape of what was typed; the services (the same ones the API calls) decide the
rest, and `add_service_error` puts their refusals next to the fields they name.
"""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from core import jsonsafe
from core.errors import ApplicationError
from core.web.forms import ServiceErrorsMixin
from integrations import netguard, vault
from integrations.config import ConfigError, parse_service
from integrations.models import BackendService
from integrations.webhooks.catalog import ALL, EVENT_TYPES
from tenants.models import ApiKey

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
CHECKBOXES = forms.CheckboxSelectMultiple


def datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT)


def _address_refusal(url: str) -> str:
    """Why the platform will not call `url` (private or unresolvable host), or ""."""
    problem = netguard.address_problem(url)
    return f"The platform will not call this address: {problem}" if problem else ""


# --- API keys -------------------------------------------------------------------------------------


class ApiKeyForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the key is for, e.g. “CRM integration”. Shown in lists and the audit log."
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=CHECKBOXES,
        initial=["read", "write"],
        help_text="Read: see agents, calls and usage. Write: change agents, numbers and calls. "
        "Admin: also manage API keys, webhooks and credentials. Give a key only what it needs.",
    )
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=datetime_input(),
        help_text="Optional, in UTC. Leave empty for a key that works until you revoke it.",
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return expires_at


# --- webhooks -------------------------------------------------------------------------------------

EVENT_CHOICES = [(ALL, "All events, including ones added later"), *((n, n) for n in EVENT_TYPES)]


class WebhookForm(ServiceErrorsMixin, forms.Form):
    url = forms.URLField(
        label="Endpoint URL",
        max_length=2000,
        assume_scheme="https",
        help_text="We POST each event here, signed (Standard Webhooks). Use https.",
    )
    description = forms.CharField(
        max_length=255, required=False, help_text="Optional: a note for your team, e.g. “CRM sync”."
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=EVENT_CHOICES,
        widget=CHECKBOXES,
        help_text="Which events this endpoint receives.",
    )
    enabled = forms.BooleanField(
        label="Send events to this endpoint",
        required=False,
        initial=True,
        help_text="Turn off to pause deliveries; replay what it missed once it is back.",
    )

    def clean_url(self):
        url = self.cleaned_data["url"]
        refusal = _address_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal)
        return url


class WebhookRotateForm(ServiceErrorsMixin, forms.Form):
    overlap_hours = forms.IntegerField(
        label="Keep the old secret working for (hours)",
        min_value=0,
        max_value=168,
        help_text="Deliveries are signed with both secrets meanwhile, so you can switch your receiver over. 0 stops "
        "the old one now.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["overlap_hours"].initial = settings.WEBHOOK_SECRET_OVERLAP_HOURS


class WebhookReplayForm(ServiceErrorsMixin, forms.Form):
    since = forms.DateTimeField(
        label="Failed since",
        widget=datetime_input(),
        help_text="In UTC. Every failed delivery created at or after this time is sent again, with its original id.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["since"].initial = (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0)


# --- provider credentials -------------------------------------------------------------------------

# The secret's parts as the vault names them (vault.SECRET_SHAPES): label, help, whether it is secret.
SECRET_PARTS = {
    "api_key": ("API key", "The key from the provider's console.", True),
    "api_secret": ("API secret", "The secret paired with the API key.", True),
    "url": ("Server URL", "Your LiveKit server, e.g. wss://your-project.livekit.cloud.", False),
    "client_id": ("Client ID", "The OAuth client's id.", True),
    "client_secret": ("Client secret", "The OAuth client's secret.", True),
    "value": ("Secret value", "The token or key your backend expects.", True),
    "check_url": (
        "Check URL",
        "Optional: we GET this URL with the secret before saving; any 2xx answer accepts it.",
        False,
    ),
    "header": (
        "Header",
        "Optional: a header name (X-API-Key) or “Name: text with <value>”. Default: Authorization: Bearer <value>.",
        False,
    ),
}


def _secret_part(name: str, *, required: bool) -> forms.CharField:
    label, help_text, hidden = SECRET_PARTS[name]
    # render_value=False: a secret is never sent back to the browser, not even after an error.
    widget = (
        forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}) if hidden else forms.TextInput
    )
    return forms.CharField(label=label, help_text=help_text, required=required, strip=True, widget=widget)


class CredentialSecretForm(ServiceErrorsMixin, forms.Form):
    """The secret fields of one provider (write-only); replacing a secret asks for all of them again."""

    # The vault names fields `secret.api_key`; a provider's refusal (`secret`) is about the whole secret
    # and goes on top, with the message that names the provider.
    service_error_aliases = {f"secret.{name}": name for name in SECRET_PARTS} | {"secret": None}

    def __init__(self, *args, provider: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider
        shape = vault.SECRET_SHAPES[provider]
        for name in shape.required:
            self.fields[name] = _secret_part(name, required=True)
        for name in shape.optional:
            self.fields[name] = _secret_part(name, required=False)

    def secret(self) -> dict:
        shape = vault.SECRET_SHAPES[self.provider]
        return {k: self.cleaned_data[k] for k in (*shape.required, *shape.optional) if self.cleaned_data.get(k)}


class CredentialCreateForm(CredentialSecretForm):
    name = forms.CharField(
        max_length=100,
        help_text="How backend services refer to it, as ${NAME} in a header or auth setting. Letters, digits and _, "
        "e.g. DEEPGRAM_KEY.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["name"])


# --- backend services -----------------------------------------------------------------------------

JSON_SETTINGS = {
    "headers": ("Headers", 'Sent with every request; values may use vault secrets: {"X-Tenant": "acme"}.'),
    "auth": (
        "Authentication",
        'e.g. {"type": "bearer", "value": "${API_TOKEN}"}, {"type": "api_key", "header": "X-API-Key", '
        '"value": "${KEY}"} or {"type": "oauth2", "token_url": "https://…", "client_id": "${ID}", '
        '"client_secret": "${SECRET}"}.',
    ),
    "retry": (
        "Retries",
        'e.g. {"max_attempts": 3, "initial_backoff": "100ms", "max_backoff": "5s", "retryable_http_codes": [429, 503]}.',
    ),
    "rate_limit": ("Rate limit", 'e.g. {"requests_per_second": 50, "burst": 10, "per_call_rps": 5}.'),
    "circuit_breaker": (
        "Circuit breaker",
        'Stop calling a failing backend for a while: {"threshold": 5, "timeout": "30s", "half_open_requests": 3}.',
    ),
    "tls": ("Client certificate (mTLS)", 'PEMs from the vault: {"cert": "${CERT}", "key": "${KEY}", "ca": "${CA}"}.'),
    "logging": (
        "Logging",
        'What the call log keeps: {"include_payload": false, "include_headers": false, "redact": ["password"]}.',
    ),
}


class JSONObjectField(forms.JSONField):
    """A JSON object setting where empty means {} (the defaults), shown empty rather than as {}."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                jsonsafe.loads(value)  # refuses what would crash the parser or the database (depth, NUL)
            except jsonsafe.UnsafeJSON as exc:
                raise forms.ValidationError(f"This JSON cannot be used: {exc}", code="invalid") from exc
            except ValueError:
                pass  # malformed: Django's own message says so
        value = super().to_python(value)
        return {} if value is None else value

    def bound_data(self, data, initial):
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return jsonsafe.loads(data)
        except ValueError:  # shown back as typed, with the error beside it
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        return "" if value is None or value == {} else super().prepare_value(value)


def _json_setting(name: str) -> JSONObjectField:
    label, help_text = JSON_SETTINGS[name]
    widget = forms.Textarea(attrs={"rows": 2, "class": "code", "spellcheck": "false"})
    return JSONObjectField(
        label=label, help_text=f"{help_text} Leave empty for the defaults.", required=False, widget=widget
    )


# The gateway's setting names (integrations.config) and the form fields that hold them.
GATEWAY_FIELDS = {
    "url": "url",
    "method": "method",
    "headers": "headers",
    "timeout": "timeout_seconds",
    **{name: name for name in ("retry", "rate_limit", "circuit_breaker", "tls", "auth", "logging")},
}


class BackendServiceForm(forms.Form):
    """A backend service; the JSON settings are checked by the gateway's own parser (in the service)."""

    name = forms.SlugField(
        max_length=100,
        help_text="Tools and webhooks refer to the service by this name: letters, digits, - and _. It cannot be "
        "changed later.",
    )
    url = forms.URLField(
        label="Base URL", max_length=2000, assume_scheme="https", help_text="Where the platform sends requests."
    )
    method = forms.ChoiceField(
        choices=[(m, m) for m in BackendService.Method.values], initial="POST", help_text="The default method."
    )
    timeout_seconds = forms.FloatField(
        label="Timeout (seconds)",
        min_value=0.001,
        max_value=300,
        initial=5.0,
        help_text="How long one attempt may take before it counts as failed.",
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Disabled services are not called.")
    headers = _json_setting("headers")
    auth = _json_setting("auth")
    retry = _json_setting("retry")
    rate_limit = _json_setting("rate_limit")
    circuit_breaker = _json_setting("circuit_breaker")
    tls = _json_setting("tls")
    logging = _json_setting("logging")

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "A service cannot be renamed; create a new one instead."

    def clean(self):
        cleaned = super().clean()
        for name in JSON_SETTINGS:
            if name in cleaned and not isinstance(cleaned[name], dict):
                self.add_error(name, 'Must be a JSON object, like {"key": "value"}, or empty.')
        self._check_with_the_gateway(cleaned)
        return cleaned

    def _check_with_the_gateway(self, cleaned: dict) -> None:
        """Every problem the gateway's own parser finds, at once and beside the form's own errors.

        The fields that are valid so far are parsed together; a field that already has an error is left
        out (its error says what to fix) and the parser's complaints about it are not repeated.
        """
        data = {
            key: cleaned[field]
            for key, field in GATEWAY_FIELDS.items()
            if field in cleaned and field not in self.errors and cleaned[field] not in (None, "")
        }
        try:
            parse_service("service", data)
        except ConfigError as exc:
            self.add_gateway_errors(exc.as_fields(), skip_fields=set(self.errors))

    def clean_url(self):
        url = self.cleaned_data["url"]
        refusal = _address_refusal(url)
        if refusal:
            raise forms.ValidationError(refusal)
        return url

    def settings(self) -> dict:
        """The service's keyword arguments (everything but the name)."""
        return {k: v for k, v in self.cleaned_data.items() if k != "name"}

    def add_service_error(self, exc: ApplicationError) -> None:
        """The gateway parser's errors have paths like `ticketing.retry.max_backoff`: put each on its field."""
        if not exc.fields:
            self.add_error(None, exc.message)
            return
        self.add_gateway_errors(exc.fields)

    def add_gateway_errors(self, fields: dict[str, list[str]], skip_fields: frozenset | set = frozenset()) -> None:
        """Each error on its field, named by its path (`retry.max_backoff: …`); none is dropped: an error
        whose field the form lacks goes above the form."""
        for path, problems in fields.items():
            parts = path.split(".")[1:] if "." in path else [path]
            field = GATEWAY_FIELDS.get(parts[0], parts[0])
            if field in skip_fields:
                continue
            named = [f"{'.'.join(parts)}: {problem}" for problem in problems]
            if field in self.fields and not self.fields[field].disabled:
                self.add_error(field, named if len(parts) > 1 else problems)
            else:
                self.add_error(None, named)
