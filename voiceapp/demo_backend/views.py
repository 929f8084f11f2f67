"""DEMO ONLY: the demo practice's backend over HTTP: `POST /demo-backend/<tool>` with the tool's arguments.

It exists only while DEBUG is on and the demo is seeded; otherwise every URL under it is a 404, as if it
were not there. Each tool request must come from the platform during a call of the demo tenant: the
platform sends every tool call with `X-Call-Id`, the id of the call it is made for, which only the platform
and the tenant know. A request without it, or whose id is not a call of the demo tenant that is still in
progress (another tenant's agent pointed at these URLs included), is a 403 and changes nothing. The
platform does not sign tool calls; docs/integrations.md#the-demo-backend says how a real backend checks
them. Answers are JSON (services.py); a retried write (same `Idempotency-Key`) gets its first answer again.
"""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from calls.models import Call
from calls.state_machine import CallStatus
from core import jsonsafe
from core.api.exceptions import error_body
from tenants.models import Tenant
from voiceapp.demo_backend import practice, services

logger = logging.getLogger(__name__)

Handler = Callable[[Tenant, dict, str, datetime], dict]
TOOLS: dict[str, Handler] = {
    "check_availability": lambda tenant, args, call_id, now: services.availability(
        tenant=tenant, date_value=args.get("date"), now=now
    ),
    "book_appointment": lambda tenant, args, call_id, now: services.booking_create(
        tenant=tenant,
        date_value=args.get("date"),
        time_value=args.get("time"),
        name=args.get("name"),
        service=args.get("service"),
        reason=args.get("reason"),
        call_id=call_id,
        now=now,
    ),
    "cancel_appointment": lambda tenant, args, call_id, now: services.booking_cancel(
        tenant=tenant, name=args.get("name"), date_value=args.get("date"), reference=args.get("reference"), now=now
    ),
    "reschedule_appointment": lambda tenant, args, call_id, now: services.booking_move(
        tenant=tenant,
        name=args.get("name"),
        new_date=args.get("new_date"),
        new_time=args.get("new_time"),
        reference=args.get("reference"),
        now=now,
    ),
}
WRITES = frozenset({"book_appointment", "cancel_appointment", "reschedule_appointment"})
METHODS = ("POST", "GET")  # a tool's GET sends its arguments as the query, any other method as a JSON body
KEY_CHARS = 200


def now() -> datetime:
    """The practice's clock: the platform's time zone (settings.TIME_ZONE)."""
    return timezone.localtime()


def _error(status: int, type_: str, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(type=type_, code=code, message=message), status=status)


def _not_found(request: HttpRequest) -> JsonResponse:
    return _error(404, "invalid_request_error", "resource_missing", f"No such URL: {request.path}")


def demo_tenant() -> Tenant | None:
    """The demo tenant while the demo backend may answer (DEBUG on, the demo seeded), else None."""
    if not settings.DEBUG:
        return None
    return Tenant.objects.alive().filter(slug=practice.DEMO_SLUG).first()


def _live_call(request: HttpRequest, tenant: Tenant) -> tuple[Call | None, str]:
    """(the demo tenant's call in progress this request is made for, "") or (None, why not)."""
    raw = request.headers.get("X-Call-Id", "")
    if not raw:
        return None, "no X-Call-Id"
    try:
        call_id = uuid.UUID(raw)
    except ValueError:
        return None, "X-Call-Id is not a call id"
    call = Call.objects.for_tenant(tenant).filter(pk=call_id).exclude(status=CallStatus.ENDED).first()
    return (call, "") if call is not None else (None, "X-Call-Id is no call of the demo tenant in progress")


def _text(value: object) -> str | None:
    return None if value is None or isinstance(value, dict | list) else str(value)


def _arguments(request: HttpRequest) -> dict | None:
    """The tool's arguments as text (None when the body is not a JSON object)."""
    if request.method == "GET":
        raw: object = request.GET.dict()
    else:
        try:
            raw = jsonsafe.loads(request.body) if request.body else {}
        except ValueError:
            return None
    if not isinstance(raw, dict):
        return None
    return {str(key): _text(value) for key, value in raw.items()}


@csrf_exempt  # called by the platform's gateway, never by a browser form
def index(request: HttpRequest) -> JsonResponse:
    """What this is, for a person who opens the URL."""
    if demo_tenant() is None:
        return _not_found(request)
    return JsonResponse(
        {
            "demo": True,
            "message": "Demo Dental's booking backend: a demo inside the platform, served only while DEBUG is on.",
            "tools": sorted(TOOLS),
            "hours": practice.HOURS_SENTENCE,
        }
    )


@csrf_exempt  # called by the platform's gateway, never by a browser form; X-Call-Id authenticates it
def tool(request: HttpRequest, name: str) -> JsonResponse:
    """Run one tool of the demo practice for a call of the demo tenant."""
    tenant = demo_tenant()
    handler = TOOLS.get(name)
    if tenant is None or handler is None:
        return _not_found(request)
    if request.method not in METHODS:
        response = _error(405, "invalid_request_error", "method_not_allowed", f"Use {' or '.join(METHODS)}.")
        response["Allow"] = ", ".join(METHODS)
        return response
    call, problem = _live_call(request, tenant)
    if call is None:
        logger.warning("demo backend: %s refused: %s", request.path, problem)
        return _error(403, "permission_error", "not_a_platform_call", "This backend answers the demo's calls only.")
    arguments = _arguments(request)
    if arguments is None:
        return _error(400, "invalid_request_error", "malformed_request", "Send the arguments as a JSON object.")
    answer = lambda: handler(tenant, arguments, str(call.pk), now())  # noqa: E731
    if name in WRITES:
        key = request.headers.get("Idempotency-Key", "")[:KEY_CHARS]
        reply = services.answer_once(tenant=tenant, key=key, tool=name, answer=answer)
    else:
        reply = answer()
    logger.info("demo backend: %s for call %s: %s", name, call.pk, reply.get("status"))
    return JsonResponse(reply)


@csrf_exempt  # a write to an unknown URL is a 404, not a CSRF page
def unknown(request: HttpRequest, rest: str = "") -> JsonResponse:
    return _not_found(request)
