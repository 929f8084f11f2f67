"""The bridge's media layer: WebRTC phone legs (aiortc) and the call recording.

`PhoneLeg` answers one leg's SDP, hands the caller's audio on as livekit frames and plays the
agent's audio out paced in 20 ms frames; `CallMix` mixes both legs into a WAV while the call runs
and `recording_store` keeps it as the call's `Recording`. The recording names load on first use:
they need Django's models, the legs do not (a process of test peers or a benchmark imports them
without setting Django up).
"""

from telephony.media.leg import PhoneLeg
from telephony.media.sdp import InvalidOffer

__all__ = ["CallMix", "InvalidOffer", "PhoneLeg", "recording_store"]


def __getattr__(name: str):
    if name in ("CallMix", "recording_store"):
        from telephony.media import recording

        return getattr(recording, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
