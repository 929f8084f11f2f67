"""A tenant's Twilio numbers: imported as PhoneNumber rows (provider twilio), their webhooks pointed at us."""

import logging
from dataclasses import dataclass, field

import requests
from django.conf import settings

from core.errors import ApplicationError, Conflict
from telephony import services
from telephony.carriers.twilio.config import account_for_tenant
from telephony.carriers.twilio.rest import TwilioError, TwilioRest
from telephony.models import PhoneNumber
from tenants.models import Tenant

logger = logging.getLogger(__name__)

VOICE_PATH, STATUS_PATH = "/carriers/twilio/voice", "/carriers/twilio/status"


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # E.164
    skipped: dict[str, str] = field(default_factory=dict)  # E.164 -> why
    pointed: list[str] = field(default_factory=list)  # E.164 whose webhooks now name us


def webhook_urls() -> tuple[str, str]:
    """The voice webhook and status callback URLs to set at Twilio ("" when the public origin is not set)."""
    base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
    return (f"{base}{VOICE_PATH}", f"{base}{STATUS_PATH}") if base else ("", "")


def twilio_setup(request, tenant: Tenant) -> dict | None:
    """What the Phone numbers page says about Twilio: the URLs to paste at Twilio (None: the tenant has no Twilio)."""
    connected = account_for_tenant(tenant.pk) is not None
    if (
        not connected
        and not PhoneNumber.objects.for_tenant(tenant).filter(provider=PhoneNumber.Provider.TWILIO).exists()
    ):
        return None
    voice_url, status_url = webhook_urls()
    if not voice_url:  # the origin this page was reached at: right unless Twilio reaches us elsewhere
        voice_url, status_url = request.build_absolute_uri(VOICE_PATH), request.build_absolute_uri(STATUS_PATH)
    return {"connected": connected, "voice_url": voice_url, "status_url": status_url}


def twilio_numbers_import(*, tenant: Tenant, point_webhooks: bool = False, actor: dict | None = None) -> ImportReport:
    """Add the voice numbers of the tenant's Twilio account as its numbers; optionally point their webhooks at us."""
    account = account_for_tenant(tenant.pk)
    if account is None:
        raise Conflict("Add a Twilio credential (Account SID and auth token) first.", code="twilio_not_connected")
    voice_url, status_url = webhook_urls()
    if point_webhooks and not voice_url:
        raise ApplicationError(
            "TWILIO_WEBHOOK_BASE_URL is not set: there is no public URL to point the numbers at.",
            code="twilio_no_public_url",
        )
    rest = TwilioRest(account)
    try:
        found = rest.numbers()
    except TwilioError as exc:
        raise ApplicationError(str(exc), code=exc.code, status_code=502) from exc
    except requests.RequestException as exc:
        raise ApplicationError("Could not reach Twilio.", code="twilio_unreachable", status_code=502) from exc
    report = ImportReport()
    ours = dict(PhoneNumber.objects.for_tenant(tenant).values_list("e164", "provider"))
    for number in found:
        if ours.get(number.e164, PhoneNumber.Provider.TWILIO) != PhoneNumber.Provider.TWILIO:
            # Served here by another carrier: Twilio's webhook would find no Twilio number and reject its calls.
            report.skipped[number.e164] = f"one of this tenant's {ours[number.e164]} numbers, left as it is"
            continue
        if number.e164 in ours:
            report.skipped[number.e164] = "already one of this tenant's numbers"
        else:
            try:
                services.phone_number_create(
                    tenant=tenant,
                    e164=number.e164,
                    friendly_name=number.friendly_name[:100],
                    provider=PhoneNumber.Provider.TWILIO,
                    external_id=number.sid,
                    actor=actor,
                )
            except ApplicationError as exc:  # registered on the platform by someone else, or not E.164
                report.skipped[number.e164] = exc.message
                continue
            report.imported.append(number.e164)
        if point_webhooks:
            try:
                rest.point_number(number.sid, voice_url=voice_url, status_callback=status_url)
            except (TwilioError, requests.RequestException) as exc:
                report.skipped[number.e164] = f"imported, but its webhook could not be set: {exc}"
                continue
            report.pointed.append(number.e164)
    return report
