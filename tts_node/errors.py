"""The node's refusals: each carries an HTTP status and a stable code, and becomes one JSON shape.

`{"error": {"code": ..., "message": ...}}`, the shape of the platform's API errors, so the
platform can pass a node refusal (bad reference audio, say) on to its caller unchanged.
"""


class NodeError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.headers = headers or {}

    def as_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(NodeError):
    status_code = 400
    code = "bad_request"


class Unauthorized(NodeError):
    status_code = 401
    code = "unauthorized"


class NotFound(NodeError):
    status_code = 404
    code = "not_found"


class PayloadTooLarge(NodeError):
    status_code = 413
    code = "payload_too_large"


class Overloaded(NodeError):
    """The queue is full: come back after `Retry-After` seconds."""

    status_code = 503
    code = "overloaded"


class NotReady(NodeError):
    status_code = 503
    code = "not_ready"


class SynthesisFailed(NodeError):
    status_code = 500
    code = "synthesis_failed"
