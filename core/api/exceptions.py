"""One JSON error shape for every API error: {"error": {"type", "code", "message", "fields"}}."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from core.api.parsers import RequestTooLarge
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

# DRF exception -> (type, code) of our error shape.
ERROR_TYPES: dict[type, tuple[str, str]] = {
    exceptions.ValidationError: ("invalid_request_error", "validation_error"),
    exceptions.ParseError: ("invalid_request_error", "malformed_request"),
    exceptions.UnsupportedMediaType: ("invalid_request_error", "unsupported_media_type"),
    exceptions.NotAcceptable: ("invalid_request_error", "not_acceptable"),
    exceptions.MethodNotAllowed: ("invalid_request_error", "method_not_allowed"),
    exceptions.NotFound: ("invalid_request_error", "resource_missing"),
    exceptions.NotAuthenticated: ("authentication_error", "not_authenticated"),
    exceptions.AuthenticationFailed: ("authentication_error", "authentication_failed"),
    exceptions.PermissionDenied: ("permission_error", "permission_denied"),
    exceptions.Throttled: ("rate_limit_error", "rate_limited"),
    RequestTooLarge: ("invalid_request_error", "request_too_large"),
}


def error_body(*, type: str, code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"type": type, "code": code, "message": message, "fields": fields or {}}}


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error leaves in the one shape, never as HTML or a bare 500."""
    if isinstance(exc, ApplicationError):
        body = error_body(type=exc.type, code=exc.code, message=exc.message, fields=exc.fields)
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such object.")
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):  # Django's own limit, met while reading a form or multipart body
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, a malformed multipart body ...
        exc = exceptions.ParseError(f"The request was refused: {exc}")
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response(
            error_body(type="api_error", code="internal_error", message="Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = _shape(exc, response.data)
    return response


def _shape(exc: exceptions.APIException, data) -> dict:
    error_type, default_code = next(
        (value for cls, value in ERROR_TYPES.items() if isinstance(exc, cls)), ("api_error", "api_error")
    )
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_field_errors(data if isinstance(data, dict) else {"non_field_errors": data})
        return error_body(type=error_type, code=default_code, message=_validation_message(fields), fields=fields)
    detail = exc.detail
    code = getattr(detail, "code", None)
    code = (
        code
        if code and code not in {"error", "invalid", "not_found", "permission_denied", "throttled"}
        else default_code
    )
    return error_body(type=error_type, code=code, message=str(detail))


def flatten_field_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors ({"scopes": {"1": [...]}}) as flat paths ({"scopes.1": [...]}): one documented shape."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            flat.update(flatten_field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(errors, list) and any(isinstance(item, dict | list) for item in errors):
        flat = {}
        for index, item in enumerate(errors):
            if item:
                flat.update(flatten_field_errors(item, f"{prefix}.{index}"))
        return flat
    messages = errors if isinstance(errors, list) else [errors]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def _validation_message(fields: dict) -> str:
    name, errors = next(iter(fields.items()), ("", [""]))
    prefix = "" if name == "non_field_errors" else f"{name}: "
    return f"{prefix}{errors[0]}"


JSON_PREFIXES = ("/v1/", "/carriers/")  # the API, and the carriers' webhooks (answered in the API's error shape)


def _wants_json(request) -> bool:
    return request.path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("Accept", "")


@csrf_exempt  # a write to an unknown URL is a 404, not a CSRF page
def api_not_found(request, exception=None, *args, **kwargs):
    """404 for a URL that matches nothing under /v1/ (also the catch-all route, so DEBUG answers JSON too)."""
    body = error_body(type="invalid_request_error", code="resource_missing", message=f"No such URL: {request.path}")
    return JsonResponse(body, status=404)


def handler404(request, exception=None):
    if _wants_json(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


@csrf_exempt
def handler400(request, exception=None):
    """Django's 400 (a SuspiciousOperation outside DRF: a form body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many
    fields): JSON for the API, a page that says what went wrong for the dashboard; 413 when it was the size."""
    too_large = isinstance(exception, RequestDataTooBig)
    status_code = 413 if too_large else 400
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if too_large:
        message = f"What you sent is larger than {limit / 1_000_000:.1f} MB, the most one request may carry."
    else:
        message = "The request could not be read (malformed, or too many fields)."
    if _wants_json(request):
        code = "request_too_large" if too_large else "malformed_request"
        return JsonResponse(error_body(type="invalid_request_error", code=code, message=message), status=status_code)
    context = {"message": message, "too_large": too_large, "status_code": status_code}
    return render(request, "400.html", context, status=status_code)


def handler500(request):
    if _wants_json(request):
        body = error_body(type="api_error", code="internal_error", message="Something went wrong on our side.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
