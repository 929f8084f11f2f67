"""The one family of errors that services raise; the API turns them into one JSON error shape."""


class ApplicationError(Exception):
    """A refused operation with a stable machine-readable code and a human message."""

    type = "invalid_request_error"
    code = "invalid_request"
    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.code = code or self.code
        self.status_code = status_code or self.status_code
        self.type = error_type or self.type


class NotFound(ApplicationError):
    type = "invalid_request_error"
    code = "resource_missing"
    status_code = 404


class Conflict(ApplicationError):
    type = "invalid_request_error"
    code = "conflict"
    status_code = 409
