"""The integration gateway: every outbound call to a tenant backend goes through `client.Gateway`.

This module holds only the error family, so that callers can catch gateway errors without importing
httpx or redis. Each error names the backend service and maps onto the API's one error shape.
"""

from core.errors import ApplicationError


class GatewayError(ApplicationError):
    """An outbound call through the gateway failed."""

    type = "api_error"
    code = "gateway_error"
    status_code = 502
    outcome = "connection_error"  # OutboundRequest.Outcome recorded in the audit row

    def __init__(self, message: str, *, service: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.service = service


class GatewayUnavailable(GatewayError):
    """The service's circuit breaker is open: failed fast, no request sent."""

    code = "UNAVAILABLE"
    status_code = 503
    outcome = "circuit_open"


class GatewayRateLimited(GatewayError):
    """The service's (or call session's) rate limit queue is full."""

    type = "rate_limit_error"
    code = "rate_limited"
    status_code = 429
    outcome = "rate_limited"


class GatewayTimeout(GatewayError):
    """The backend did not answer within the service's timeout (on every attempt made)."""

    code = "gateway_timeout"
    status_code = 504
    outcome = "timeout"


class GatewayConnectionError(GatewayError):
    """The backend could not be reached, or dropped the connection."""

    code = "backend_unreachable"
    outcome = "connection_error"


class GatewayAuthError(GatewayError):
    """The OAuth2 token endpoint failed (down, 5xx or an unreadable answer); counts against the breaker."""

    code = "oauth_token_unavailable"
    outcome = "connection_error"


class GatewayHTTPError(GatewayError):
    """The backend answered with an error status that was not (or no longer) retried."""

    code = "backend_http_error"
    outcome = "http_error"

    def __init__(self, message: str, *, status: int, body: str = "", **kwargs):
        super().__init__(message, **kwargs)
        self.status = status
        self.body = body  # a short, redacted excerpt of the response body


class GatewayConfigError(GatewayError):
    """The service's configuration cannot be used: a missing secret, bad TLS material, a bad path."""

    type = "invalid_request_error"
    code = "gateway_config_error"
    status_code = 400
    outcome = "config_error"


__all__ = [
    "GatewayAuthError",
    "GatewayConfigError",
    "GatewayConnectionError",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayRateLimited",
    "GatewayTimeout",
    "GatewayUnavailable",
]
