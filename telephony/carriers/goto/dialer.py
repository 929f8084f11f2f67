"""GoTo Connect as the calls app's outbound dialer (`calls.carriers.Dialer`).

A GoTo web call is placed with OUR SDP offer (POST /web-calls/v1/calls answers with GoTo's), so it must be
placed where its media leg will live: in a media worker. `dial` hands the call to the media workers'
dial channel (`telephony.worker.dial_channel`) and waits for the worker's reply (GoTo's call id, or why
the dial was refused); the worker's bridge then waits for the callee to pick up.
"""

import asyncio
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from calls import carriers
from calls import selectors as call_selectors

# How long the dialer waits for a media worker to place the call: GoTo's request timeout, retries included.
REPLY_MARGIN_SECONDS = 15.0


def reply_seconds() -> float:
    return 3 * settings.GOTO_REQUEST_TIMEOUT_SECONDS + REPLY_MARGIN_SECONDS


class GoToDialer:
    """Dials through a media worker's GoTo line, once per call (no retry: never ring a callee twice)."""

    def available(self) -> bool:
        return bool(settings.GOTO_CLIENT_ID and settings.GOTO_CLIENT_SECRET)

    def dial(self, request: carriers.DialRequest) -> str:
        from telephony.worker import dial_channel, dial_message

        call = call_selectors.bridge_call_load(call_id=request.call_id, tenant_id=request.tenant_id)
        if call is None:
            raise carriers.DialRefused("call_not_found", "The call to dial is not this tenant's.")
        wait = reply_seconds()

        async def dial() -> dict:
            layer = get_channel_layer()
            reply_to = await layer.new_channel()
            message = dial_message(call, to_number=request.to_number, reply_to=reply_to, deadline=time.time() + wait)
            await layer.send(dial_channel(), message)
            try:
                async with asyncio.timeout(wait):
                    return await layer.receive(reply_to)
            except TimeoutError:
                return {"error": "media_worker_unavailable", "message": "No media worker placed the call in time."}

        answer = async_to_sync(dial)()
        if answer.get("error") or not answer.get("external_call_id"):
            raise carriers.DialRefused(str(answer.get("error") or "dial_failed"), str(answer.get("message") or ""))
        return str(answer["external_call_id"])

    def hang_up(self, external_call_id: str) -> None:
        """Any media worker hangs the call up through the tenant's GoTo line."""
        found = call_selectors.call_by_external_id(external_call_id)
        if found is None:
            return
        message = {"type": "goto.hangup", "external_call_id": external_call_id, "tenant_id": found[1]}
        async_to_sync(get_channel_layer().send)(settings.MEDIA_WORKER_CHANNEL, message)
