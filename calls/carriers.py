"""The carrier interface as the calls app sees it: dialling an outbound call.

Carriers (GoTo Connect, Twilio, ...) are adapters in the telephony app. Each registers a `Dialer` here at
start-up under the provider name its numbers carry (`PhoneNumber.provider`); the outbound service dials
through it without importing telephony. Everything else a carrier does to a live call (answer, hold,
transfer, hang up) happens in the telephony app's bridge, which owns the call's media.

The numbers themselves are the telephony app's rows, reached through `Call.phone_number`'s foreign key.
"""

import logging
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "telephony_not_configured"  # the failure reason when no carrier can dial the call


class DialRefused(Exception):
    """The carrier answered the dial with an error: the call ends with `code` as its failure reason."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class DialRequest:
    call_id: str
    tenant_id: str
    to_number: str  # E.164
    caller_id: str  # E.164: one of the tenant's numbers

    @classmethod
    def of(cls, call) -> "DialRequest":
        return cls(str(call.pk), str(call.tenant_id), call.to_number, call.from_number)


class Dialer(Protocol):
    def available(self) -> bool:
        """Whether this deployment can dial through the carrier now (configured, connected)."""

    def dial(self, request: DialRequest) -> str:
        """Place the call; returns the carrier's id for it. Sent once: raises DialRefused, never retries a dial."""

    def hang_up(self, external_call_id: str) -> None:
        """Hang up a call the carrier knows by `external_call_id` (a dial no bridge owns yet)."""


_dialers: dict[str, Dialer] = {}


def register_dialer(provider: str, dialer: Dialer) -> None:
    _dialers[provider] = dialer


def dialer_for(call) -> Dialer | None:
    """The dialer of the carrier behind the number the call is placed from."""
    number = call.phone_number
    return _dialers.get(number.provider) if number is not None else None


def hang_up_on_commit(call, external_call_id: str) -> None:
    """Once the transaction that ended `call` commits, hang up its carrier leg (best effort, logged)."""
    dialer = dialer_for(call)
    if dialer is None:
        return

    def hang_up() -> None:
        try:
            dialer.hang_up(external_call_id)
        except Exception:  # the leg may be gone already; the call is ended either way
            logger.warning("could not hang up carrier call %s of call %s", external_call_id, call.pk, exc_info=True)

    transaction.on_commit(hang_up, robust=True)


def number_model():
    """The telephony app's PhoneNumber model, through the foreign key that points at it (no import)."""
    from calls.models import Call

    return Call._meta.get_field("phone_number").related_model


def active_numbers(*, tenant):
    """The tenant's active numbers, by number."""
    model = number_model()
    return model.objects.for_tenant(tenant).filter(status=model.Status.ACTIVE).order_by("e164")


def tenant_numbers(*, tenant):
    """All the tenant's numbers, by number (filters and forms)."""
    return number_model().objects.for_tenant(tenant).order_by("e164")
