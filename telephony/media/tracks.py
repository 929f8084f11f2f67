"""The agent's audio towards the phone: a paced aiortc track, and the conversions around it.

aiortc pulls a track: its sender calls `recv()`, encodes what it gets (Opus or G.711) and sends it
at once, so the track alone decides when packets leave. `PacedAudioTrack.recv()` returns one
20 ms frame per slot of a fixed monotonic schedule (`start + n * 20 ms`): no drift however long
the call, and a frame the loop was late for goes out as soon as it can with its own timestamp, so
the far end's jitter buffer sees the gap close. After a long stall (more than `max_catch_up` late)
the missed slots are skipped instead of sent in a burst the far end would drop anyway.

Between slots the agent's audio waits in a queue of 48 kHz mono s16 bytes. A reply starts playing
once `prebuffer` seconds are queued, or once its first audio has waited that long: the agent side
paces its frames in real time on its own clock, and one spare frame keeps the two clocks' jitter
from turning into clicks.

With Opus negotiated the track encodes its frames itself (`OpusMonoEncoder`: mono, 32 kbit/s, on
the event loop, where libopus runs without the GIL) and hands aiortc ready packets; with G.711
aiortc encodes the frames. Measured with 10 legs on 2 cores, that and not running the encoder on
the agent's silence cut a leg's CPU by about 40% (0.094 to 0.054 core) and the pacing p99 from
about 80 ms to about 13 ms.
"""

import asyncio
import collections
import fractions
import math
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from livekit import rtc

RATE = 48000  # what aiortc's Opus encoder takes; G.711 is resampled from it by aiortc
TIME_BASE = fractions.Fraction(1, RATE)
JITTER_SAMPLES = 3000  # the last minute of 20 ms frames
OPUS_BIT_RATE = 32000  # mono voice; aiortc's default is 96 kbit/s stereo
GAP_FRAMES = 5  # silent slots between two audio slots, up to this many, count as a dropout


class PcmQueue:
    """A FIFO of s16 mono bytes, read in fixed-size pieces without copying the whole queue."""

    def __init__(self):
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0  # bytes already read from the first chunk
        self.size = 0  # bytes queued
        self.oldest: float | None = None  # when the oldest queued audio arrived (monotonic)

    def push(self, data: bytes, now: float) -> None:
        if data:
            if self.size == 0:
                self.oldest = now
            self._chunks.append(data)
            self.size += len(data)

    def take(self, count: int) -> bytes:
        """Up to `count` bytes from the front."""
        parts, wanted = [], min(count, self.size)
        while wanted:
            chunk = self._chunks[0]
            piece = chunk[self._offset : self._offset + wanted]
            parts.append(piece)
            wanted -= len(piece)
            self._offset += len(piece)
            if self._offset == len(chunk):
                self._chunks.popleft()
                self._offset = 0
        data = b"".join(parts)
        self.size -= len(data)
        if self.size == 0:
            self.oldest = None
        return data

    def clear(self) -> None:
        self._chunks.clear()
        self._offset = self.size = 0
        self.oldest = None


class PacedAudioTrack(MediaStreamTrack):
    """An aiortc audio track that plays queued 48 kHz mono PCM (silence when none) on a fixed schedule."""

    kind = "audio"

    def __init__(
        self,
        *,
        frame_ms: int = 20,
        prebuffer: float = 0.04,
        max_catch_up: float = 0.1,
        on_sent: Callable[[bytes, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.period = frame_ms / 1000
        self.samples = RATE * frame_ms // 1000
        self._frame_bytes = 2 * self.samples
        self._prebuffer, self._max_catch_up = prebuffer, max_catch_up
        self._on_sent, self._clock = on_sent, clock
        self.queue = PcmQueue()
        self._opus: OpusMonoEncoder | None = None
        self._start: float | None = None
        self._slot = 0  # index of the next slot on the schedule
        self._playing = False
        self._last_audio_slot: int | None = None
        self.jitter_ms: collections.deque[float] = collections.deque(maxlen=JITTER_SAMPLES)
        self.frames_out = self.audio_frames = self.underruns = self.skipped = self.gaps = 0

    def push(self, pcm: bytes) -> None:
        self.queue.push(pcm, self._clock())

    def clear(self) -> None:
        self.queue.clear()
        self._playing = False

    @property
    def queued_seconds(self) -> float:
        return self.queue.size / 2 / RATE

    def encode_opus(self, bit_rate: int = OPUS_BIT_RATE) -> None:
        """Hand aiortc Opus packets encoded here (mono) instead of frames for it to encode (stereo)."""
        self._opus = OpusMonoEncoder(bit_rate=bit_rate)

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        late = await self._wait_for_slot()
        pcm, is_audio = self._next_pcm()
        if is_audio and late > self.period:
            self.underruns += 1  # audio was waiting, but this frame leaves more than a frame late
        self._count(is_audio)
        pts = self._slot * self.samples
        assert self._start is not None  # the first _wait_for_slot started the schedule
        due = self._start + self._slot * self.period
        self._slot += 1
        if self._on_sent is not None:
            self._on_sent(pcm, due)  # the slot's time on the schedule, not when the loop got to it
        if self._opus is not None:
            return self._opus.encode(pcm, pts=pts, silent=not is_audio)
        return _av_frame(pcm, pts=pts)

    async def _wait_for_slot(self) -> float:
        """Sleep until the next slot is due; returns how late it is (s), after skipping a long stall."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._slot * self.period
        if due > now:
            await asyncio.sleep(due - now)
            now = self._clock()
        late = now - due
        if late > self._max_catch_up:
            missed = math.floor(late / self.period + 1e-6)  # float-safe: 0.48 / 0.02 is 24
            self._slot += missed
            self.skipped += missed
            late -= missed * self.period
        self.jitter_ms.append(late * 1000)
        return late

    def _next_pcm(self) -> tuple[bytes, bool]:
        queue, now = self.queue, self._clock()
        if not self._playing and queue.size:
            # (queued audio always has its arrival time: `oldest` is None only when the queue is empty)
            waited = queue.oldest is not None and now - queue.oldest >= self._prebuffer
            ready = queue.size >= self._prebuffer * RATE * 2 or waited
            self._playing = bool(ready)
        if not self._playing:
            return bytes(self._frame_bytes), False
        pcm = queue.take(self._frame_bytes)
        if queue.size == 0:
            self._playing = False  # the reply is over (or the agent side fell behind): prebuffer again
        return pcm.ljust(self._frame_bytes, b"\0"), True

    def _count(self, is_audio: bool) -> None:
        self.frames_out += 1
        if not is_audio:
            return
        self.audio_frames += 1
        if self._last_audio_slot is not None and 1 < self._slot - self._last_audio_slot <= GAP_FRAMES:
            self.gaps += 1
        self._last_audio_slot = self._slot


class OpusMonoEncoder:
    """libopus through PyAV, one context per leg: mono, VoIP mode, one packet per 20 ms frame.

    aiortc's own Opus encoder upmixes to stereo at 96 kbit/s, goes through the default thread pool
    and computes an audio level with numpy for every frame (about 0.12 ms, more than the encoding):
    for a phone call's mono voice that is wasted. Each packet carries its frame's pts, so the RTP
    timestamps follow the track's schedule (skipped slots included).
    """

    def __init__(self, *, bit_rate: int = OPUS_BIT_RATE):
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.format, self._codec.layout, self._codec.sample_rate = "s16", "mono", RATE
        self._codec.bit_rate = bit_rate
        self._codec.time_base = TIME_BASE
        self._codec.options = {"application": "voip"}
        self._silence: bytes | None = None  # the settled encoder's packet for a silent frame
        self._last_silent: bytes | None = None

    def encode(self, pcm: bytes, *, pts: int, silent: bool) -> av.Packet | av.AudioFrame:
        """One 20 ms frame of 48 kHz mono s16 as an Opus packet stamped `pts`."""
        if silent and self._silence is not None:
            return self._packet(self._silence, pts)
        frame = _av_frame(pcm, pts=pts)
        packets = self._codec.encode(frame)
        if not packets:  # libopus answers every 20 ms frame at once; should that change, let aiortc encode it
            return frame
        data = bytes(packets[-1])
        self._note(data, silent=silent)
        return self._packet(data, pts)

    def _note(self, data: bytes, *, silent: bool) -> None:
        """Once silence encodes to the same packet twice running, libopus has settled (its state stops
        changing: tests check the stream is bit-identical), so that packet is reused without running
        the encoder until sound comes back. The agent is silent most of a call."""
        if not silent:
            self._silence = self._last_silent = None
            return
        if data == self._last_silent:
            self._silence = data
        self._last_silent = data

    @staticmethod
    def _packet(data: bytes, pts: int) -> av.Packet:
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, TIME_BASE
        return packet


def _av_frame(pcm: bytes, *, pts: int) -> av.AudioFrame:
    samples = np.frombuffer(pcm, dtype=np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


# --- conversions ------------------------------------------------------------------------------------


def mono_pcm(frame: rtc.AudioFrame) -> np.ndarray:
    """A livekit frame's samples as mono int16 (channels averaged)."""
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels == 1:
        return samples
    return samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)


class ToRate:
    """Resamples livekit frames of any rate and channel count to mono s16 at one rate (swresample).

    One resampler per input rate is kept (the agent's TTS rate does not change within a call). It
    holds back about a millisecond of audio, so nothing of a reply is left behind when it ends;
    `reset()` drops that state, so audio cleared on barge-in does not leak into the next reply.
    """

    def __init__(self, rate: int):
        self.rate = rate
        self._resampler: av.AudioResampler | None = None
        self._input_rate: int | None = None

    def convert(self, frame: rtc.AudioFrame) -> bytes:
        mono = mono_pcm(frame)
        if frame.sample_rate == self.rate:
            return mono.tobytes()
        if not mono.any() and (len(mono) * self.rate) % frame.sample_rate == 0:
            # Digital silence (the agent between replies) resamples to silence: skip the filter, and
            # start the next sound from a clean filter state.
            self.reset()
            return bytes(2 * (len(mono) * self.rate // frame.sample_rate))
        resampler = self._resampler  # None exactly when _input_rate is
        if resampler is None or frame.sample_rate != self._input_rate:
            self._resampler = resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
            self._input_rate = frame.sample_rate
        source = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="s16", layout="mono")
        source.sample_rate = frame.sample_rate
        return b"".join(_pcm(piece) for piece in resampler.resample(source))

    def reset(self) -> None:
        self._resampler = self._input_rate = None


def _pcm(frame: av.AudioFrame) -> bytes:
    return frame.to_ndarray().reshape(-1)[: frame.samples].tobytes()
