"""The endpoints Twilio calls: a number's voice webhook and the calls' status callbacks.

Every request must carry `X-Twilio-Signature` made with the auth token of the tenant the request is
about (found by the called number, or by the call's CallSid): a missing or wrong signature is a 403 and
changes nothing. Answers are TwiML (the voice webhook) or an empty 204 (status callbacks); bad input is
a 4xx JSON error in the platform's one error shape.
"""

import functools
import logging
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from calls import selectors as call_selectors
from calls import services as call_services
from calls.models import Call
from calls.state_machine import CallStatus
from core import events
from core.api.exceptions import error_body
from telephony import carrier_events, services
from telephony.carriers.twilio import signature, twiml
from telephony.carriers.twilio.config import TwilioAccount, account_for_tenant
from telephony.models import PhoneNumber

logger = logging.getLogger(__name__)

# Rejected before anyone answers (<Reject>: nothing billed); other refusals are told why (<Say>, <Hangup>).
REJECT_CODES = frozenset({"unknown_number", "unassigned_number", "tenant_suspended"})
# Twilio's CallStatus of a call that was never answered, and what the calls app calls it.
NOT_ANSWERED = {"busy": "busy", "no-answer": "no_answer", "failed": "failed", "canceled": "no_answer"}
UNANSWERED_STATES = (CallStatus.INITIAL, CallStatus.DIALING, CallStatus.RINGING)
STREAM_PATH = signature.STREAM_PATH
MAX_PARAMETER_CHARS = 255  # Twilio's SIDs are 34 characters; its numbers and SIP addresses are far shorter
NUMBER_CHARS = Call._meta.get_field("from_number").max_length  # what the call keeps of a caller's address


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(type="invalid_request_error", code=code, message=message), status=status)


def _post_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Twilio POSTs its webhooks: any other method is a JSON 405 (require_POST's has an empty HTML body)."""

    @functools.wraps(view)
    def only_post(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            response = _error(405, "method_not_allowed", f"Method {request.method} is not allowed here: use POST.")
            response["Allow"] = "POST"
            return response
        return view(request)

    return only_post


def _twiml(xml: str) -> HttpResponse:
    return HttpResponse(xml, content_type="text/xml")


def _forbidden(reason: str, request: HttpRequest) -> JsonResponse:
    logger.warning("Twilio webhook %s refused: %s", request.path, reason)
    return _error(403, "invalid_signature", "The request is not signed by the Twilio account of this number.")


def _authentic(request: HttpRequest, account: TwilioAccount | None) -> str:
    """Why the request is not Twilio's for `account` ("" when it is)."""
    if account is None:
        return "the tenant has no Twilio credential"
    if request.POST.get("AccountSid") != account.account_sid:
        return "the AccountSid is not the tenant's"
    if not signature.is_valid(request, account.auth_token):
        return "missing or invalid X-Twilio-Signature"
    return ""


def _fields(request: HttpRequest, *names: str) -> dict[str, str] | JsonResponse:
    values = {name: request.POST.get(name, "") for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        return _error(400, "invalid_request", f"Missing Twilio parameter(s): {', '.join(missing)}.")
    # A NUL is refused by PostgreSQL (a 500 if it reached a lookup), and no Twilio value is this long.
    invalid = [name for name, value in values.items() if "\x00" in value or len(value) > MAX_PARAMETER_CHARS]
    if invalid:
        return _error(400, "invalid_request", f"Invalid Twilio parameter(s): {', '.join(invalid)}.")
    return values


@csrf_exempt  # Twilio signs its requests instead (X-Twilio-Signature)
@_post_only
def voice(request: HttpRequest) -> HttpResponse:
    """A call to one of our Twilio numbers: check it is Twilio's, route it, bridge it to a media stream."""
    fields = _fields(request, "CallSid", "To", "From", "AccountSid")
    if isinstance(fields, JsonResponse):
        return fields
    call_sid, to, from_ = fields["CallSid"], fields["To"], fields["From"][:NUMBER_CHARS]  # a SIP caller's may be long
    # The called number decides the tenant: this lookup crosses tenants by design (as inbound_call_accept).
    number = (
        PhoneNumber.objects.dangerously_unscoped()
        .filter(e164=to, provider=PhoneNumber.Provider.TWILIO)
        .values("tenant_id")
        .first()
    )
    if number is None:  # nobody's number here: nothing to authenticate against, nothing created
        logger.warning("Twilio call %s to %s: no Twilio number %s on the platform, rejected", call_sid, to, to)
        return _twiml(twiml.reject())
    problem = _authentic(request, account_for_tenant(number["tenant_id"]))
    if problem:
        return _forbidden(problem, request)
    try:
        call = services.inbound_call_accept(external_call_id=call_sid, from_number=from_, to_number=to)
    except services.CallRejected as exc:
        logger.warning("Twilio call %s to %s rejected (%s): %s", call_sid, to, exc.code, exc.message)
        return _twiml(twiml.reject() if exc.code in REJECT_CODES else twiml.say_and_hang_up())
    if call is None:  # Twilio asked again for the same call (a retry): bridge it if it is still ringing
        found = call_selectors.call_by_external_id(call_sid)
        if found is None or found[1] != str(number["tenant_id"]) or found[2] != CallStatus.RINGING:
            return _twiml(twiml.hang_up())
        call_id, tenant_id = found[0], found[1]
    else:
        call_id, tenant_id = call.call_id, call.tenant_id
    token = signature.stream_token(call_id=call_id, tenant_id=tenant_id, call_sid=call_sid)
    return _twiml(twiml.connect_stream(signature.websocket_url(request, STREAM_PATH), token))


@csrf_exempt
@_post_only
def status(request: HttpRequest) -> HttpResponse:
    """A call's status callback: a call never answered ends (busy, no answer, failed); a hang-up reaches the bridge."""
    fields = _fields(request, "CallSid", "CallStatus", "AccountSid")
    if isinstance(fields, JsonResponse):
        return fields
    call_sid, state = fields["CallSid"], fields["CallStatus"]
    found = services.external_call_resolve(call_sid) or _dialled_call(request)
    if found is None:  # not a call of ours (or one forgotten): nothing to authenticate against
        logger.warning("Twilio status %s for unknown call %s ignored", state, call_sid)
        return _error(404, "call_not_found", "No call with this CallSid.")
    call_id, tenant_id, call_status, consult = found
    problem = _authentic(request, account_for_tenant(tenant_id))
    if problem:
        return _forbidden(problem, request)
    if not consult and not _is_twilios(call_id, tenant_id, call_sid):
        return _error(404, "call_not_found", "No call with this CallSid.")
    answered_by = request.POST.get("AnsweredBy", "")
    if not consult and call_status in UNANSWERED_STATES and state in NOT_ANSWERED:
        call_services.outbound_failed(call_id=call_id, tenant_id=tenant_id, reason=NOT_ANSWERED[state])
    elif not consult and call_status in UNANSWERED_STATES and state == "completed":
        # Over before its media stream ever started (a caller who hung up at once): no bridge will end it.
        call_services.call_note(call_id=call_id, tenant_id=tenant_id, key="failure_reason", value="ended_before_media")
        call_services.call_end(call_id=call_id, tenant_id=tenant_id, reason=Call.EndReason.CALLER_HANGUP)
    elif not consult and call_status == CallStatus.CONNECTED and state == "completed":
        # Its bridge ends it; should the bridge's process be gone, the stuck-call sweep does, at this time.
        call_services.call_carrier_ended(call_id=call_id, tenant_id=tenant_id)
    elif answered_by:
        call_services.call_note(call_id=call_id, tenant_id=tenant_id, key="twilio_answered_by", value=answered_by)
    name = _event_name(state)
    if name:
        message = {"type": "pbx.event", "event": name, "data": {"call_id": call_sid, "reason": state}}
        async_to_sync(get_channel_layer().group_send)(
            events.call_group(call_id), {**message, "external_call_id": call_sid}
        )
    return HttpResponse(status=204)


def _dialled_call(request: HttpRequest) -> tuple[str, str, str, bool] | None:
    """The call a status callback URL names (`?call&tenant`, set by our dialer), for a CallSid not stored yet:
    Twilio may report a dial (a quick `failed`) before the REST answer carrying its CallSid was stored."""
    call_id, tenant_id = request.GET.get("call", ""), request.GET.get("tenant", "")
    try:
        uuid.UUID(call_id), uuid.UUID(tenant_id)
    except ValueError:
        return None
    found = call_selectors.call_status(call_id=call_id, tenant_id=tenant_id)
    return (*found, False) if found is not None else None


def _is_twilios(call_id: str, tenant_id: str, call_sid: str) -> bool:
    """Whether `call_sid` is the call's (storing it when the call has none yet); after the signature check."""
    call = call_selectors.bridge_call_load(call_id=call_id, tenant_id=tenant_id)
    if call is None or call.external_call_id not in (None, "", call_sid):
        return False
    if not call.external_call_id:
        call_services.call_set_external_id(call_id=call_id, tenant_id=tenant_id, external_call_id=call_sid)
    return True


# AnsweredBy (machine_detection=Enable): a person, a machine (or fax), or Twilio could not tell.
MACHINES = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})


@csrf_exempt
@_post_only
def answer(request: HttpRequest) -> HttpResponse:
    """A call we placed was picked up: Twilio asks what to do (with AnsweredBy); bridge it to a media stream.

    A person gets the agent at once; a machine gets the agent's voicemail message (our detector waits for
    its tone) or, with no message, a hang-up and the call ends `voicemail`; when Twilio could not tell,
    our own detector listens first (telephony/amd.py).
    """
    fields = _fields(request, "CallSid", "AccountSid")
    if isinstance(fields, JsonResponse):
        return fields
    call_sid = fields["CallSid"]
    call_id, tenant_id = request.GET.get("call", ""), request.GET.get("tenant", "")
    try:
        uuid.UUID(call_id), uuid.UUID(tenant_id)
    except ValueError:
        return _error(400, "invalid_request", "call and tenant must name one of our calls.")
    problem = _authentic(request, account_for_tenant(tenant_id))
    if problem:
        return _forbidden(problem, request)
    call = call_selectors.bridge_call_load(call_id=call_id, tenant_id=tenant_id)
    status_ = call_selectors.call_status(call_id=call_id, tenant_id=tenant_id)
    if call is None or status_ is None or call.external_call_id not in (None, "", call_sid):
        return _error(404, "call_not_found", "No such call.")
    if status_[2] != CallStatus.DIALING:
        return _twiml(twiml.hang_up())  # ended meanwhile (canceled, swept): nobody to bridge
    if not call.external_call_id:  # Twilio was quicker than our dial's answer: the CallSid is known now
        call_services.call_set_external_id(call_id=call_id, tenant_id=tenant_id, external_call_id=call_sid)
    answered_by = request.POST.get("AnsweredBy", "")
    if answered_by:
        call_services.call_note(call_id=call_id, tenant_id=tenant_id, key="twilio_answered_by", value=answered_by)
    if answered_by in MACHINES and (answered_by == "fax" or not call.voicemail_message):
        call_services.outbound_failed(call_id=call_id, tenant_id=tenant_id, reason="voicemail")
        return _twiml(twiml.hang_up())
    token = signature.stream_token(call_id=call_id, tenant_id=tenant_id, call_sid=call_sid, amd=answered_by != "human")
    return _twiml(twiml.connect_stream(signature.websocket_url(request, STREAM_PATH), token))


def _event_name(state: str) -> str:
    """The carrier event (telephony.carrier_events) a Twilio CallStatus is, or ""."""
    if state == "in-progress":
        return carrier_events.CONNECTED
    if state == "completed":
        return carrier_events.ENDED
    if state in NOT_ANSWERED:
        return carrier_events.FAILED
    return ""


def status_callback_path() -> str:
    return reverse("twilio-status")
