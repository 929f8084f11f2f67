"""Idempotency-Key on POST (Stripe's semantics).

The first request with a key is recorded before it runs; its response (2xx or 4xx) is stored for
24 hours and replayed to any retry with the same key and the same body. The same key with another
body is a 422; a retry while the first is still running is a 409. A 5xx is not stored, so the
client's retry runs again.
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from core.errors import ApplicationError
from tenants.models import IdempotencyKey

HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retry safely: the same key and body within 24 h replays the first response.",
)
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyError(ApplicationError):
    type = "idempotency_error"
    status_code = 422


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.body):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _claim(request, key: str) -> IdempotencyKey | Response:
    """Record the key as in progress, or return the stored response to replay."""
    fingerprint = _fingerprint(request._request)
    now = timezone.now()
    keys = IdempotencyKey.objects.for_tenant(request.tenant)
    keys.filter(key=key, expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            return keys.create(
                tenant=request.tenant,
                key=key,
                request_method=request.method,
                request_path=request.path,
                request_fingerprint=fingerprint,
                expires_at=now + TTL,
            )
    except IntegrityError:
        existing = keys.get(key=key)
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyError(
            "This Idempotency-Key was used with a different request; use a new key for a new request.",
            code="idempotency_key_reused",
        ) from None
    if existing.state != IdempotencyKey.State.COMPLETE:
        raise IdempotencyError(
            "A request with this Idempotency-Key is still in progress; retry shortly.",
            code="idempotency_key_in_use",
            status_code=409,
        )
    return Response(existing.response_body, status=existing.response_status, headers={"Idempotent-Replayed": "true"})


def idempotent(method):
    """Decorate a view's post(): honour the Idempotency-Key header when the client sends one."""

    @wraps(method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return method(view, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise IdempotencyError(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", code="idempotency_key_invalid", status_code=400
            )
        claimed = _claim(request, key)
        if isinstance(claimed, Response):
            return claimed
        try:
            response = method(view, request, *args, **kwargs)
        except (ApplicationError, APIException, DjangoValidationError) as exc:
            response = view.handle_exception(exc)  # a 4xx is an answer too: store and replay it
        except Exception:
            claimed.delete()
            raise
        _store(claimed, response)
        return response

    return extend_schema(parameters=[IDEMPOTENCY_PARAMETER])(wrapper)


def _store(claimed: IdempotencyKey, response: Response) -> None:
    if response.status_code >= 500:
        claimed.delete()
        return
    claimed.state = IdempotencyKey.State.COMPLETE
    claimed.response_status = response.status_code
    claimed.response_body = json.loads(json.dumps(response.data, default=str))
    claimed.save(update_fields=["state", "response_status", "response_body", "updated_at"])
