"""Audio in and out of a call's agent session.

Two paths, chosen by configuration:

- In-process media link (no LiveKit server): `CallAudioInput` takes caller frames pushed by the
  telephony bridge (or `simulate_call`), `CallAudioOutput` plays the agent's frames out in real
  time to a sink. `attach_in_process()` wires both into an `AgentSession` behind the framework's
  `TranscriptSynchronizer`, so an interrupted reply reports the words that were actually heard.
- LiveKit room (`settings.LIVEKIT_URL` set): `connect_room()` joins the call's room
  (`call-{tenant_id}-{call_id}`) and `room_options()` tells `AgentSession.start(room=...)` whom to
  listen to; the framework's RoomIO does the rest.

Nothing here touches the database: these run inside the audio loop.
"""

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from livekit import rtc
from livekit.agents.voice import io
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

if TYPE_CHECKING:  # room_io is imported only where a room is used
    from livekit.agents.voice import room_io

logger = logging.getLogger(__name__)

FRAME_MS = 20  # the phone leg's packet size: 20 ms Opus frames
AudioSink = Callable[[rtc.AudioFrame], None]


def split_frame(frame: rtc.AudioFrame, frame_ms: int = FRAME_MS) -> list[rtc.AudioFrame]:
    """Cut a frame into `frame_ms` pieces (the last may be shorter)."""
    step = frame.sample_rate * frame_ms // 1000
    if frame.samples_per_channel <= step:
        return [frame]
    data, width = bytes(frame.data), 2 * frame.num_channels
    return [
        rtc.AudioFrame(data[start * width : (start + count) * width], frame.sample_rate, frame.num_channels, count)
        for start in range(0, frame.samples_per_channel, step)
        for count in [min(step, frame.samples_per_channel - start)]
    ]


class CallAudioInput(io.AudioInput):
    """Caller audio into the session: the media side pushes frames, the session pulls them.

    `push_frame` never blocks the media side. When the session is behind (several frames waiting),
    the waiting frames are handed over as one, up to `max_batch` seconds: every frame costs the
    pipeline the same bookkeeping whatever its length, so a loaded process catches up instead of
    falling further behind, and an idle one still gets every 20 ms frame at once. If the session
    falls more than `max_buffered` seconds behind, the oldest audio is dropped: on a live call,
    late audio is worth less than keeping up.
    """

    def __init__(self, *, label: str = "call-input", max_buffered: float = 5.0, max_batch: float = 0.1):
        super().__init__(label=label)
        self._max_batch = max_batch
        self._frames: collections.deque[rtc.AudioFrame] = collections.deque()
        self._buffered = 0.0
        self._max_buffered = max_buffered
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0.0  # seconds of audio dropped because the session lagged

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        self._frames.append(frame)
        self._buffered += frame.duration
        while self._buffered > self._max_buffered and len(self._frames) > 1:
            old = self._frames.popleft()
            self._buffered -= old.duration
            self.dropped += old.duration
        self._ready.set()

    def close(self) -> None:
        """The caller's leg is gone: the session's audio iteration ends."""
        self._closed = True
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __anext__(self) -> rtc.AudioFrame:
        while not self._frames:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._buffered -= frame.duration
        return self._with_waiting(frame) if self._frames else frame

    def _with_waiting(self, first: rtc.AudioFrame) -> rtc.AudioFrame:
        parts, length = [first], first.duration
        while self._frames and length < self._max_batch:
            nxt = self._frames[0]
            if (nxt.sample_rate, nxt.num_channels) != (first.sample_rate, first.num_channels):
                break
            parts.append(self._frames.popleft())
            length += nxt.duration
            self._buffered -= nxt.duration
        return rtc.combine_audio_frames(parts) if len(parts) > 1 else first


_END = object()  # marks the end of a playback segment in the output queue


class CallAudioOutput(io.AudioOutput):
    """Agent audio towards the caller, played out in real time (`speed` times faster in tests).

    The framework pushes synthesized audio faster than real time; this output keeps it in a
    queue and hands `frame_ms` pieces to `sink` as they fall due, the way a phone leg consumes
    them. `clear_buffer()` (barge-in) drops what has not been played and reports how far playback
    got, which is what the transcript synchronizer turns into the text the caller heard.
    `pause()`/`resume()` let the framework hold a reply during a possible false interruption.
    """

    def __init__(
        self,
        *,
        sink: AudioSink | None = None,
        sample_rate: int | None = None,
        speed: float = 1.0,
        frame_ms: int = FRAME_MS,
        label: str = "call-output",
        on_clear: Callable[[], None] | None = None,
    ):
        super().__init__(label=label, capabilities=io.AudioOutputCapabilities(pause=True), sample_rate=sample_rate)
        self._sink = sink
        self._on_clear = on_clear  # the leg's own clear: audio queued past the sink goes too (barge-in)
        self._speed = speed
        self._frame_ms = frame_ms
        self._queue: collections.deque = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._paused = False
        self._segment_open = False  # frames captured and not yet reported finished
        self._playing = False  # the open segment has started playing
        self._played = 0.0  # seconds of the open segment handed to the sink
        self._clock = 0.0  # monotonic time at which the open segment's position 0 fell due
        self._epoch = 0  # bumped by clear_buffer so a frame in flight is not played after it

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._task is None:
            self._task = asyncio.create_task(self._playout(), name="CallAudioOutput.playout")
        self._segment_open = True
        self._queue.extend(split_frame(frame, self._frame_ms))
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        if self._segment_open:
            self._queue.append(_END)
            self._wake.set()

    def clear_buffer(self) -> None:
        self._queue.clear()
        self._epoch += 1
        if self._on_clear is not None:
            self._on_clear()
        if self._segment_open:
            self._finish(interrupted=True)

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._clock = time.monotonic() - self._played / self._speed  # continue from where it stopped
            self._wake.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _finish(self, *, interrupted: bool) -> None:
        position = self._played
        self._segment_open = self._playing = False
        self._played = 0.0
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    async def _playout(self) -> None:
        while True:
            if not self._queue or self._paused:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._queue.popleft()
            if item is _END:
                self._finish(interrupted=False)
                continue
            await self._play(item)

    async def _play(self, frame: rtc.AudioFrame) -> None:
        if not self._playing:
            self._playing = True
            self._clock = time.monotonic()
            self.on_playback_started(created_at=time.time())
        epoch = self._epoch
        delay = self._clock + self._played / self._speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if epoch != self._epoch:
            return  # cleared while waiting: this frame is never heard
        if self._paused:
            self._queue.appendleft(frame)
            return
        self._played += frame.duration
        if self._sink is not None:
            self._sink(frame)


class _NullTextOutput(io.TextOutput):
    """The agent's text goes nowhere live; the session's conversation items are the record."""

    def __init__(self):
        super().__init__(label="call-text", next_in_chain=None)

    async def capture_text(self, text: str) -> None:
        return None

    def flush(self) -> None:
        return None


def attach_in_process(session, audio_input: CallAudioInput, audio_output: CallAudioOutput, *, speed: float = 1.0):
    """Wire the in-process link into `session` (before `start()`); returns the synchronizer to close."""
    synchronizer = TranscriptSynchronizer(
        next_in_chain_audio=audio_output, next_in_chain_text=_NullTextOutput(), speed=speed
    )
    session.input.audio = audio_input
    session.output.audio = synchronizer.audio_output
    session.output.transcription = synchronizer.text_output
    return synchronizer


# --- LiveKit room path ----------------------------------------------------------------------------


def room_token(*, api_key: str, api_secret: str, room_name: str, identity: str, name: str = "") -> str:
    """A join token for the agent's participant in the call's room."""
    from livekit import api

    grants = api.VideoGrants(room_join=True, room=room_name, can_publish=True, can_subscribe=True)
    token = api.AccessToken(api_key, api_secret).with_identity(identity).with_grants(grants)
    return token.with_name(name or identity).with_kind("agent").to_jwt()


async def connect_room(*, url: str, api_key: str, api_secret: str, room_name: str, identity: str) -> rtc.Room:
    """Join the call's LiveKit room as the agent."""
    room = rtc.Room()
    await room.connect(url, room_token(api_key=api_key, api_secret=api_secret, room_name=room_name, identity=identity))
    return room


def room_options(*, caller_identity: str | None) -> "room_io.RoomOptions":
    """Listen to the caller's participant (the bridge publishes the phone leg under it)."""
    from livekit.agents.voice import room_io

    options = room_io.RoomOptions(close_on_disconnect=True)
    if caller_identity:
        options.participant_identity = caller_identity
    return options
