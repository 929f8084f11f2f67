"""Answering an inbound GoTo web call: UNVERIFIED, the one step no source we have describes.

What is known (docs/telephony.md#goto-connect, "Unverified"):
- an inbound call to the device's extension is announced on the device's notification channel as
  {"source": "WebRTC", "type": "incoming", "content": {...}} (grade B: GoTo's reference names the type
  and the envelope, not the content);
- one unverified codebase (grade D) answers with POST /web-calls/v1/calls/{callId}/answer
  {"sdp", "inCallChannelId"}.

Nothing says what `content` holds (the call id's name, the caller, the number dialled, an SDP offer) nor
which side makes the SDP offer. This module is the most plausible reading, and the only place to
change once GoTo's live reference (Web Calls: incoming call notification, answer) has been checked:

- the call id is `content.callId` (or `content.id`), the leg id `content.legId`; the caller is
  `content.caller.number` (or `callerNumber`, `from`), the number dialled `content.callee.number`
  (or `calleeNumber`, `dialedNumber`, `to`);
- if `content.sdp` carries an offer, we answer it: POST …/answer {"sdp": <our answer>, "inCallChannelId"};
- otherwise we make the offer: POST …/answer {"sdp": <our offer>, "inCallChannelId"} and apply the
  `sdp` of GoTo's response as the answer.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from telephony.carriers.goto import wire
from telephony.carriers.goto.api import GoToApi
from telephony.carriers.goto.config import GoToConnectError


class OfferAnswerLeg(Protocol):
    """A media leg that can answer an offer or make one (`telephony.media.PhoneLeg`)."""

    async def accept(self, offer_sdp: str) -> str: ...

    async def offer(self) -> str: ...

    async def accept_answer(self, sdp_text: str) -> None: ...


@dataclass(frozen=True)
class Incoming:
    call_id: str
    leg_id: str
    from_number: str
    to_number: str
    offer_sdp: str  # "" when the notification carries none


def _first(content: dict, *paths: str) -> str:
    for path in paths:
        value: Any = content
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return ""


def incoming_of(notification: wire.Notification) -> Incoming | None:
    """An `incoming` web-calls notification, or None when it is something else or names no call."""
    if notification.source != wire.SOURCE_WEB_CALLS or notification.type != wire.TYPE_INCOMING:
        return None
    content = notification.content
    call_id = _first(content, "callId", "id")
    if not call_id:
        return None
    return Incoming(
        call_id=call_id,
        leg_id=_first(content, "legId"),
        from_number=_first(content, "caller.number", "callerNumber", "from"),
        to_number=_first(content, "callee.number", "calleeNumber", "dialedNumber", "to"),
        offer_sdp=_first(content, "sdp"),
    )


async def answer(api: GoToApi, incoming: Incoming, leg: OfferAnswerLeg, *, channel_id: str) -> str:
    """Answer the call with its media on `leg`; returns GoTo's leg id for it ("" when none is known)."""
    if incoming.offer_sdp:
        ours = await leg.accept(incoming.offer_sdp)
        body = await api.answer(incoming.call_id, {"sdp": ours, "inCallChannelId": channel_id})
    else:
        ours = await leg.offer()
        body = await api.answer(incoming.call_id, {"sdp": ours, "inCallChannelId": channel_id})
        theirs = body.get("sdp") if isinstance(body, dict) else None
        if not isinstance(theirs, str) or not theirs.strip():
            raise GoToConnectError(
                "GoTo answered the call without an SDP answer to our offer.", code="pbx_bad_response"
            )
        await leg.accept_answer(theirs)
    leg_id = body.get("legId") if isinstance(body, dict) else None
    return leg_id if isinstance(leg_id, str) and leg_id else incoming.leg_id
