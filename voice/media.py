"""How a session's audio reaches it: the in-process link, or a LiveKit room."""

from dataclasses import dataclass

from django.conf import settings
from livekit import rtc

from voice import io


@dataclass
class InProcessMedia:
    """The in-process link: the bridge (or simulate_call) feeds `audio_input` and drains `audio_output`."""

    audio_input: io.CallAudioInput
    audio_output: io.CallAudioOutput
    speed: float = 1.0  # > 1 plays and paces text faster than real time (tests, simulate_call --fast)


@dataclass
class RoomMedia:
    """A LiveKit room the agent has joined (`io.connect_room`); the framework's RoomIO does the rest."""

    room: rtc.Room
    caller_identity: str | None = None


def livekit_configured() -> bool:
    """Production media goes through LiveKit rooms; without LIVEKIT_URL, the in-process link."""
    return bool(settings.LIVEKIT_URL)


async def room_media(*, call_id, room_name: str, caller_identity: str | None = None) -> RoomMedia:
    """Join the call's room (`call-{tenant_id}-{call_id}`) as the agent, with the platform's LiveKit keys."""
    room = await io.connect_room(
        url=settings.LIVEKIT_URL,
        api_key=settings.LIVEKIT_API_KEY,
        api_secret=settings.LIVEKIT_API_SECRET,
        room_name=room_name,
        identity=f"agent-{call_id}",
    )
    return RoomMedia(room=room, caller_identity=caller_identity)
