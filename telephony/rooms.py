"""The call's media room (docs/telephony.md#inbound-calls: after answer, before the session): a LiveKit room in production, the in-process link otherwise.

With LIVEKIT_URL set, the bridge creates the room `call-{tenant_id}-{call_id}` through LiveKit's
room service (livekit-api), joins it as the caller's participant `caller-{call_id}`, publishes the
phone leg's audio as a microphone track and plays the agent's track back into the phone leg; the
agent session joins the same room (`voice.session.room_media`) and listens to the caller
participant. Without LIVEKIT_URL, `open_room()` returns None and the bridge links the phone leg to
the session in-process (`voice.session.InProcessMedia`).

No LiveKit server can run on the development machines, so this path is tested up to the SDK calls
(room service requests against a local Twirp server, tokens, track plumbing).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from django.conf import settings
from livekit import api, rtc

from voice import io
from voice.session import RoomMedia, livekit_configured, room_media

logger = logging.getLogger(__name__)

ROOM_EMPTY_TIMEOUT_SECONDS = 60  # LiveKit closes a room this long after its last participant left
SAMPLE_RATE = 48000


def caller_identity(call_id) -> str:
    return f"caller-{call_id}"


async def open_room(call) -> "LiveKitRoom | None":
    """Create the call's LiveKit room, or None for the in-process link."""
    if not livekit_configured():
        return None
    room = LiveKitRoom(call)
    await room.create()
    return room


def _service() -> api.LiveKitAPI:
    url = settings.LIVEKIT_URL.replace("wss://", "https://").replace("ws://", "http://")
    return api.LiveKitAPI(url, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)


class LiveKitRoom:
    """One call's LiveKit room with the phone leg published in it as the caller."""

    def __init__(self, call):
        self.call = call
        self.room: rtc.Room | None = None
        self._source: rtc.AudioSource | None = None
        self._frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue(maxsize=250)  # 5 s of 20 ms frames
        self._tasks: list[asyncio.Task] = []

    async def create(self) -> None:
        service = _service()
        try:
            request = api.CreateRoomRequest(
                name=self.call.room_name, empty_timeout=ROOM_EMPTY_TIMEOUT_SECONDS, max_participants=4
            )
            await service.room.create_room(request)
        finally:
            await service.aclose()

    async def link(self, leg) -> Callable[[rtc.AudioFrame], None]:
        """Join as the caller, publish the leg's audio, play the agent's back; returns the caller-audio sink."""
        self.room = await io.connect_room(
            url=settings.LIVEKIT_URL,
            api_key=settings.LIVEKIT_API_KEY,
            api_secret=settings.LIVEKIT_API_SECRET,
            room_name=self.call.room_name,
            identity=caller_identity(self.call.call_id),
        )
        self._source = source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("phone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        self.room.on("track_subscribed", lambda t, _pub, who: self._play_agent(t, who, leg))
        self._tasks.append(asyncio.create_task(self._publish(source), name=f"room-publish-{self.call.call_id}"))
        return self._push

    def _push(self, frame: rtc.AudioFrame) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # the room is behind: late audio is dropped, not queued forever
            self._frames.put_nowait(frame)

    async def _publish(self, source: rtc.AudioSource) -> None:
        while True:
            frame = await self._frames.get()
            await source.capture_frame(frame)

    def _play_agent(self, track, participant, leg) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO or participant.identity == caller_identity(self.call.call_id):
            return
        self._tasks.append(asyncio.create_task(self._agent_audio(track, leg), name=f"room-play-{self.call.call_id}"))

    @staticmethod
    async def _agent_audio(track, leg) -> None:
        async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
            leg.play(event.frame)

    async def agent_media(self) -> RoomMedia:
        return await room_media(
            call_id=self.call.call_id,
            room_name=self.call.room_name,
            caller_identity=caller_identity(self.call.call_id),
        )

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.room is not None:
            with contextlib.suppress(Exception):
                await self.room.disconnect()
        service = _service()
        try:
            await service.room.delete_room(api.DeleteRoomRequest(room=self.call.room_name))
        except Exception:  # the room closes itself once empty
            logger.warning("call %s: could not delete room %s", self.call.call_id, self.call.room_name)
        finally:
            await service.aclose()
