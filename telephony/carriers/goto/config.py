"""GoTo Connect: its errors and the shapes of ids and numbers."""

import re

from core.errors import ApplicationError
from core.validators import E164_PATTERN

EXTENSION_PATTERN = re.compile(r"^[0-9]{1,10}\Z")
E164 = re.compile(E164_PATTERN)
MAX_ID_LENGTH = 255  # calls.external_call_id is a VARCHAR(255)


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


def _checked_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise _invalid(
            f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters.", f"invalid_{name}", name
        )
    return value
