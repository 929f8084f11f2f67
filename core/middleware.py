"""Request context: a request id on every request, in the logs and echoed in X-Request-ID."""

import re
import uuid

from core.logging import call_id_var, request_id_var, tenant_id_var

# Accept a caller's id only if it is short and plain, so it cannot forge log lines or headers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id_from(request) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestContextMiddleware:
    """Bind the request id for logging and return it in the response's X-Request-ID header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = _request_id_from(request)
        # Set, not reset afterwards: Django logs the response (django.request) after the middleware
        # returns, and that line should carry the ids too. The next request overwrites them.
        request_id_var.set(request.request_id)
        tenant_id_var.set(None)
        call_id_var.set(None)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response
