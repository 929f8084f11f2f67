"""Twilio as the calls app's outbound dialer (`calls.carriers.Dialer`) for numbers whose provider is twilio."""

import logging

import requests
from django.conf import settings

from calls import carriers
from telephony import services
from telephony.carriers.twilio.config import account_for_tenant
from telephony.carriers.twilio.rest import TwilioError, TwilioRest

logger = logging.getLogger(__name__)


class TwilioDialer:
    """Places the call through Twilio's REST API, once (no retry: never ring a callee twice).

    Twilio fetches our answer URL when the callee picks up (with AnsweredBy from its machine detection)
    and reports progress to our status callback; both need the public origin, TWILIO_WEBHOOK_BASE_URL.
    """

    def available(self) -> bool:
        return bool(settings.TWILIO_WEBHOOK_BASE_URL)

    def dial(self, request: carriers.DialRequest) -> str:
        account = account_for_tenant(request.tenant_id)
        if account is None:
            raise carriers.DialRefused("twilio_not_connected", "The tenant has no Twilio credential.")
        base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
        names = f"call={request.call_id}&tenant={request.tenant_id}"  # the call, before its CallSid is stored
        try:
            return TwilioRest(account).place_call(
                to=request.to_number,
                from_=request.caller_id,
                answer_url=f"{base}/carriers/twilio/answer?{names}",
                status_callback=f"{base}/carriers/twilio/status?{names}",
            )
        except TwilioError as exc:
            raise carriers.DialRefused(exc.code, str(exc)) from exc
        except requests.RequestException as exc:
            raise carriers.DialRefused("twilio_unreachable", f"Could not reach Twilio: {type(exc).__name__}") from exc

    def hang_up(self, external_call_id: str) -> None:
        found = services.external_call_resolve(external_call_id)
        account = account_for_tenant(found[1]) if found is not None else None
        if account is None:
            logger.warning("Twilio call %s: no tenant credential to hang it up with", external_call_id)
            return
        TwilioRest(account).hang_up(external_call_id)
