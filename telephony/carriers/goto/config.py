"""GoTo Connect: its errors, the platform's OAuth client (GoToConfig) and the shapes of ids and numbers."""

import hashlib
import re
from dataclasses import dataclass, field

from core.errors import ApplicationError
from core.validators import E164_PATTERN
from integrations.gateway.oauth import TokenCache

SERVICE = "gotoconnect"
EXTENSION_PATTERN = re.compile(r"^[0-9]{1,10}\Z")
E164 = re.compile(E164_PATTERN)
MAX_ID_LENGTH = 255  # calls.external_call_id is a VARCHAR(255)

TOKENS = TokenCache()  # auth.TokenProvider's process-wide cache


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
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls) -> "GoToConfig":
        from django.conf import settings

        return cls(
            api_base_url=settings.GOTO_API_BASE_URL,
            token_url=settings.GOTO_OAUTH_TOKEN_URL,
            client_id=settings.GOTO_CLIENT_ID,
            client_secret=settings.GOTO_CLIENT_SECRET,
            scopes=tuple(settings.GOTO_OAUTH_SCOPES),
            timeout_seconds=settings.GOTO_REQUEST_TIMEOUT_SECONDS,
        )

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def account_key(self) -> str:
        """A stable, non-secret name for this GoToConnect account (rate-limit and dedup keys)."""
        return hashlib.sha256(f"{self.token_url}|{self.client_id}".encode()).hexdigest()[:16]


def _checked_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise _invalid(
            f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters.", f"invalid_{name}", name
        )
    return value
