"""GoTo Connect: where it is and who we are there (GoToConfig), its errors, and how it dials a target."""

import hashlib
import re
from dataclasses import dataclass, field

from core.errors import ApplicationError
from core.validators import E164_PATTERN
from integrations.config import RetryPolicy
from integrations.gateway.oauth import TokenCache
from integrations.gateway.ratelimit import LocalRateLimiter
from telephony.carriers.goto import legacy_wire as wire

SERVICE = "gotoconnect"
# Operations whose repetition cannot ring anyone twice: answering, hold/resume, hangup and our SDP
# answer put the call in a state, they do not start anything new.
IDEMPOTENT = frozenset({"answer", "send_answer", "hold", "resume", "hangup"})
RETRY_POLICY = RetryPolicy(max_attempts=3, initial_backoff=0.25, max_backoff=5.0, multiplier=2.0)
MAX_RETRY_AFTER_SECONDS = 30.0  # a 429 asking for longer is not waited out: the caller gets the error
MAX_QUEUE_SECONDS = 30.0  # how far ahead the rate-limit queue may book; beyond that, refuse
ERROR_MESSAGE_CHARS = 200
EXTENSION_PATTERN = re.compile(r"^[0-9]{1,10}\Z")
E164 = re.compile(E164_PATTERN)
MAX_ID_LENGTH = 255  # calls.external_call_id is a VARCHAR(255)

# Embedded default (no REDIS_URL): every client of the process shares these.
LOCAL_LIMITER = LocalRateLimiter()
TOKENS = TokenCache()


class GoToConnectError(ApplicationError):
    """A GoToConnect operation failed; `status` is the PBX's HTTP status (None when it never answered).

    `retryable` says whether trying again later can succeed (a timeout, a 5xx, a rate limit), as opposed
    to a refusal that will not change (bad credentials, an unknown call, invalid input).
    """

    type = "api_error"
    code = "pbx_error"
    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        **kwargs,
    ):
        super().__init__(message, code=code, **kwargs)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def _invalid(message: str, code: str, field_name: str) -> GoToConnectError:
    return GoToConnectError(
        message, code=code, status_code=400, error_type="invalid_request_error", fields={field_name: [message]}
    )


@dataclass(frozen=True)
class GoToConfig:
    """Where GoToConnect is and who we are there; `from_settings()` reads the GOTO_* settings."""

    api_base_url: str
    websocket_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    rate_limit_per_minute: int = 1000
    timeout_seconds: float = 10.0
    event_dedup_seconds: int = 3600

    def __post_init__(self):
        if self.rate_limit_per_minute < 1 or self.timeout_seconds <= 0 or self.event_dedup_seconds < 1:
            raise GoToConnectError(
                "GoToConnect settings are invalid: the rate limit, timeout and dedup window must be positive.",
                code="goto_config_invalid",
                status_code=500,
            )

    @classmethod
    def from_settings(cls) -> "GoToConfig":
        from django.conf import settings

        return cls(
            api_base_url=settings.GOTO_API_BASE_URL,
            websocket_url=settings.GOTO_WEBSOCKET_URL,
            token_url=settings.GOTO_OAUTH_TOKEN_URL,
            client_id=settings.GOTO_CLIENT_ID,
            client_secret=settings.GOTO_CLIENT_SECRET,
            scopes=tuple(settings.GOTO_OAUTH_SCOPES),
            rate_limit_per_minute=settings.GOTO_RATE_LIMIT_PER_MINUTE,
            timeout_seconds=settings.GOTO_REQUEST_TIMEOUT_SECONDS,
            event_dedup_seconds=settings.GOTO_EVENT_DEDUP_SECONDS,
        )

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def account_key(self) -> str:
        """A stable, non-secret name for this GoToConnect account (rate-limit and dedup keys)."""
        return hashlib.sha256(f"{self.token_url}|{self.client_id}".encode()).hexdigest()[:16]


def dial_string(destination: str) -> str:
    """A GoToConnect dial string: "+15551234567" -> "tel:+15551234567"; "ext:1001" and "tel:+1..." stay."""
    value = destination.strip() if isinstance(destination, str) else ""
    if value.startswith(wire.EXT_PREFIX) and EXTENSION_PATTERN.match(value.removeprefix(wire.EXT_PREFIX)):
        return value
    number = value.removeprefix(wire.TEL_PREFIX)
    if E164.match(number):
        return wire.TEL_PREFIX + number
    raise _invalid(
        f"Cannot dial {destination!r}: use an E.164 number (+15551234567) or a PBX extension (ext:1001).",
        "invalid_dial_string",
        "dial_string",
    )


_format_dial_string = dial_string  # the methods' `dial_string` parameters shadow the function


def _checked_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise _invalid(
            f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters.", f"invalid_{name}", name
        )
    return value
