"""The media leg interface the bridge plays into and hears the caller from, whatever carries the call.

`telephony.media.PhoneLeg` (WebRTC: GoTo Connect and the browser test call) and the Twilio Media Streams
leg (`telephony.carriers.twilio.stream.TwilioStreamLeg`) implement it. A leg is built by the bridge with
the caller-audio callback and the recording mix (`LegFactory`), hands the caller's audio on as livekit
frames at the session's rate, and plays the agent's audio out paced in 20 ms frames.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from livekit import rtc

if TYPE_CHECKING:
    from telephony.media.recording import CallMix


logger = logging.getLogger(__name__)


def deliver_inbound(label: str, frame: rtc.AudioFrame, *consumers: Callable[[rtc.AudioFrame], object] | None) -> None:
    """Hand one frame of the caller's audio to each consumer (the session, the recording mix); a consumer's
    bug is logged and must not end the caller's audio."""
    for consume in consumers:
        if consume is None:
            continue
        try:
            consume(frame)
        except Exception:
            logger.exception("leg %s: inbound audio consumer failed", label)


class MediaLeg(Protocol):
    def play(self, frame: rtc.AudioFrame) -> None:
        """Queue agent audio towards the caller: any sample rate, channel count or length."""

    def clear(self) -> None:
        """Drop what has not been played yet (barge-in)."""

    async def wait_closed(self) -> str:
        """Resolves with why the leg ended ("remote_hangup", "connection_failed", "closed" by us)."""

    @property
    def closed(self) -> bool: ...

    async def aclose(self) -> None: ...


REMOTE_HANGUP = "remote_hangup"
CLOSED = "closed"  # we closed it (aclose)


class LegLifetime:
    """How a leg ends, the same for every leg: one future resolved once with why ("closed" when we closed it)."""

    _closed_reason: asyncio.Future | None = None
    _closing = False  # set by the leg's aclose() before it resolves CLOSED

    def _closed_future(self) -> asyncio.Future:
        if self._closed_reason is None:
            self._closed_reason = asyncio.get_running_loop().create_future()
        return self._closed_reason

    def _resolve(self, reason: str) -> None:
        future = self._closed_future()
        if not future.done():
            future.set_result(CLOSED if self._closing else reason)

    @property
    def closed(self) -> bool:
        """The leg has ended (either side) or is being closed."""
        return self._closing or (self._closed_reason is not None and self._closed_reason.done())

    async def wait_closed(self) -> str:
        """Resolves with why the leg ended: "remote_hangup", "connection_failed" or "closed" (by us)."""
        return await asyncio.shield(self._closed_future())


class LegFactory(Protocol):
    def __call__(
        self,
        *,
        label: str,
        on_audio: Callable[[rtc.AudioFrame], None],
        mix: "CallMix | None",
        session_sample_rate: int,
    ) -> MediaLeg: ...
