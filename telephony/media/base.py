"""The media leg interface the bridge plays into and hears the caller from, whatever carries the call.

`telephony.media.PhoneLeg` (WebRTC: GoTo Connect and the browser test call) and the Twilio Media Streams
leg (`telephony.carriers.twilio.stream.TwilioStreamLeg`) implement it. A leg is built by the bridge with
the caller-audio callback and the recording mix (`LegFactory`), hands the caller's audio on as livekit
frames at the session's rate, and plays the agent's audio out paced in 20 ms frames.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from livekit import rtc

if TYPE_CHECKING:
    from telephony.media.recording import CallMix


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


class LegFactory(Protocol):
    def __call__(
        self,
        *,
        label: str,
        on_audio: Callable[[rtc.AudioFrame], None],
        mix: "CallMix | None",
        session_sample_rate: int,
    ) -> MediaLeg: ...
