"""One Twilio Media Streams leg: the caller's mu-law 8 kHz in, the agent's audio out, paced in 20 ms frames.

Twilio sends the caller's audio as base64 G.711 mu-law, 8 kHz mono, 20 ms per `media` message; we decode
it through a 256-entry lookup table (numpy, no per-sample Python), resample it to the session's rate with
one swresample context (av) and hand it on as livekit frames. The agent's audio (any rate) is resampled
to 8 kHz (`telephony.media.tracks.ToRate`, av), encoded through a 65,536-entry table and sent as `media`
messages on a fixed 20 ms schedule per reply (`start + n * 20 ms`: no drift, a late slot is sent at
once, a long stall skips the missed slots; a reply starts after a 40 ms prebuffer and ends, with a
`mark`, after 100 ms without audio). `clear()` (barge-in) drops the queue and sends Twilio `clear`, which
discards what Twilio has buffered; a `mark` follows each reply so Twilio tells us when it was played.

A conference (docs/telephony.md#twilio): `join(guest)` adds a second leg's party (a supervisor's stream)
to this leg's call, mixed with numpy (`telephony.media.mixer`): this leg's caller hears the agent and
the guest, the guest hears the agent and the caller, and what this leg hands on (the agent session's
input, the recording's caller lane) is the caller and the guest together; each leg keeps its own 20 ms
schedule, the other party's audio reaching it through a small bounded buffer. `part()` ends it.

The leg never touches the database and never blocks the loop: the websocket consumer feeds it and sends
what it produces, one leg per socket.
"""

import asyncio
import base64
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import av
import numpy as np
from livekit import rtc

from telephony.media.base import CLOSED, REMOTE_HANGUP, LegLifetime, deliver_inbound
from telephony.media.mixer import PcmBuffer, mix
from telephony.media.tracks import ToRate

if TYPE_CHECKING:
    from telephony.media.recording import CallMix

logger = logging.getLogger(__name__)

RATE = 8000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000  # 160 mu-law bytes, one per sample
JITTER_SAMPLES = 3000
SILENCE = b"\xff"  # mu-law zero
IDLE_SLOTS = 5  # a reply is over (and marked) when no audio came for this many slots (100 ms)
PARTY_PREBUFFER = 2 * FRAME_BYTES  # a conference party's audio waits for 40 ms before it is mixed in ...
PARTY_MAX = 10 * FRAME_BYTES  # ... and never lags more than 200 ms behind (the oldest is dropped)


def _mulaw_tables() -> tuple[np.ndarray, np.ndarray]:
    """G.711 mu-law: the 256 decoded values, and the code of every 16-bit sample (ITU-T G.711, 14-bit form)."""
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF
    magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
    decode = np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14-bit
    negative = pcm < 0
    value = np.minimum(np.where(negative, -pcm, pcm), 8159) + 0x21  # clip, bias (33 in 14-bit)
    segment = np.clip(np.floor(np.log2(value)).astype(np.int32) - 5, 0, 7)
    code = np.where(value > 0x1FFF, 0x7F, (segment << 4) | ((value >> (segment + 1)) & 0x0F))  # the top: clipped
    encode = (~(code | np.where(negative, 0x80, 0)) & 0xFF).astype(np.uint8)
    return decode, encode


DECODE, ENCODE = _mulaw_tables()


def mulaw_decode(data: bytes) -> np.ndarray:
    return DECODE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(pcm: np.ndarray) -> bytes:
    return ENCODE[pcm.astype(np.int32) + 32768].tobytes()


Send = Callable[[dict], Awaitable[None]]


def _party_buffer() -> PcmBuffer:
    return PcmBuffer(max_samples=PARTY_MAX, prebuffer=PARTY_PREBUFFER)


class TwilioStreamLeg(LegLifetime):
    """The bridge's media leg over one Media Streams websocket (`send` puts a JSON message on it)."""

    def __init__(
        self,
        *,
        label: str,
        send: Send,
        on_audio: Callable[[rtc.AudioFrame], None] | None = None,
        mix: "CallMix | None" = None,
        session_sample_rate: int = 16000,
        max_catch_up: float = 0.1,
        prebuffer: float = 0.04,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self._send = label, send
        self._on_audio, self._mix, self._session_rate = on_audio, mix, session_sample_rate
        self._max_catch_up, self._prebuffer, self._clock = max_catch_up, prebuffer, clock
        self.stream_sid = ""
        self._inbound: av.AudioResampler | None = None
        self._to_8k = ToRate(RATE)
        self._queue = bytearray()  # mu-law waiting for its slot
        self._pacer: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._closed_reason: asyncio.Future | None = None
        self._closing = False
        self._marks = 0
        self._queued_at = 0.0  # when the agent's queue last went from empty to not
        self._agent_live = False  # the agent's audio is flowing (no prebuffer wait before its next frame)
        self._guest: TwilioStreamLeg | None = None  # the conference party joined to this leg's call
        self._side: PcmBuffer | None = None  # the other parties' audio this leg sends, mixed with the agent's
        self._guest_in: PcmBuffer | None = None  # the guest's audio, mixed into what this leg hands on
        self._tap: Callable[[np.ndarray], None] | None = None  # a guest leg's audio, for the call it joined
        self.frames_in = self.frames_out = self.skipped = self.underruns = self.send_errors = 0
        self.jitter_ms: collections.deque[float] = collections.deque(maxlen=JITTER_SAMPLES)

    # --- inbound ---------------------------------------------------------------------------------

    def feed(self, payload: bytes) -> None:
        """One `media` message's audio (already base64-decoded mu-law) from the caller."""
        if self._closing or not payload:
            return
        self.frames_in += 1
        pcm = mulaw_decode(payload)
        if self._tap is not None:
            self._tap(pcm)
        if self._guest is not None:
            self._guest._hear(pcm)
        if self._guest_in is not None:
            pcm = mix(pcm, self._guest_in.take(len(pcm)))
        if self._on_audio is None and self._mix is None:
            return  # a guest leg: its audio went to the call it joined
        if self._session_rate == RATE:
            frames = [rtc.AudioFrame(pcm.tobytes(), RATE, 1, len(pcm))]
        else:
            frames = self._resample(pcm)
        for frame in frames:
            self._deliver(frame)

    def _resample(self, pcm: np.ndarray) -> list[rtc.AudioFrame]:
        if self._inbound is None:
            self._inbound = av.AudioResampler(format="s16", layout="mono", rate=self._session_rate)
        source = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        source.sample_rate = RATE
        out = []
        for piece in self._inbound.resample(source):
            samples = piece.to_ndarray().reshape(-1)[: piece.samples]
            out.append(rtc.AudioFrame(samples.tobytes(), self._session_rate, 1, piece.samples))
        return out

    def _deliver(self, frame: rtc.AudioFrame) -> None:
        deliver_inbound(self.label, frame, self._on_audio, self._mix.caller if self._mix is not None else None)

    # --- outbound --------------------------------------------------------------------------------

    def play(self, frame: rtc.AudioFrame) -> None:
        """Queue agent audio towards the caller: any rate or channel count; sent in 20 ms frames."""
        if self._closing:
            return
        pcm = np.frombuffer(self._to_8k.convert(frame), dtype=np.int16)
        if not self._queue:
            self._queued_at = self._clock()
        self._queue.extend(mulaw_encode(pcm))
        if self._guest is not None:
            self._guest.play(frame)
        self._kick()

    def _kick(self) -> None:
        if self._pacer is None:
            self._pacer = asyncio.create_task(self._pace(), name=f"TwilioStreamLeg.pace-{self.label}")
        self._wake.set()

    def clear(self) -> None:
        """Barge-in: drop our queue and tell Twilio to drop what it has buffered."""
        self._queue.clear()
        self._to_8k.reset()
        if self.stream_sid and not self._closing:
            self._post({"event": "clear", "streamSid": self.stream_sid})
        if self._guest is not None:
            self._guest.clear()

    @property
    def queued_seconds(self) -> float:
        return len(self._queue) / RATE

    async def _pace(self) -> None:
        while not self._closing:
            if not self._queue and not self._side_ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._side_ready:
                await self._prebuffer_reply()
            await self._run_slots()

    async def _run_slots(self) -> None:
        """20 ms slots on one schedule while there is audio to send: one reply of the agent's, or a conference."""
        period = FRAME_MS / 1000
        start, slot, idle = self._clock(), 0, 0
        while not self._closing and (idle <= IDLE_SLOTS or self._side_ready):
            due = start + slot * period
            delay = due - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            late = self._clock() - due
            if late > self._max_catch_up:  # a long stall: skip the missed slots instead of a burst
                missed = int(late / period)
                slot += missed
                self.skipped += missed
                continue
            slot += 1
            agent, side = self._take_agent(), self._take_side()
            if agent is None:  # the agent's next frame is not here yet: nothing of its in this slot
                idle += 1
                if idle == IDLE_SLOTS + 1 and self._agent_live:
                    self._agent_live = False
                    await self._mark()  # the reply has been sent: Twilio echoes the mark once it has played it
                if side is None or not side.any():
                    continue  # nothing audible to send
            else:
                idle = 0
            self.jitter_ms.append(max(late, 0.0) * 1000)
            if late > period:  # more than a frame late: the caller may have heard a gap
                self.underruns += 1
            await self._send_media(agent, side)

    def _take_agent(self) -> bytes | None:
        """The agent's next 20 ms (a reply's tail padded with silence), or None. While a conference keeps the
        slots running, a new reply first waits for `prebuffer`, as a reply from idle does (`_prebuffer_reply`)."""
        if not self._queue:
            return None
        if self._side is not None and not self._agent_live:
            waited = self._clock() - self._queued_at >= self._prebuffer
            if len(self._queue) < int(self._prebuffer * RATE) and not waited:
                return None
        self._agent_live = True
        piece = bytes(self._queue[:FRAME_BYTES]).ljust(FRAME_BYTES, SILENCE)
        del self._queue[:FRAME_BYTES]
        return piece

    def _take_side(self) -> np.ndarray | None:
        return self._side.take(FRAME_BYTES) if self._side is not None and self._side.ready else None

    @property
    def _side_ready(self) -> bool:
        return self._side is not None and self._side.ready

    async def _mark(self) -> None:
        self._marks += 1
        await self._safe_send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": f"reply-{self._marks}"}})

    async def _prebuffer_reply(self) -> None:
        """A reply starts once `prebuffer` seconds are queued or its first audio has waited that long: the
        agent side hands frames over in real time on its own clock, and one spare frame absorbs the two
        clocks' jitter."""
        first, wanted = self._clock(), int(self._prebuffer * RATE)
        while len(self._queue) < wanted and not self._closing:
            left = self._prebuffer - (self._clock() - first)
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _send_media(self, agent: bytes | None, side: np.ndarray | None) -> None:
        """Send one slot: the agent's mu-law as it is, or mixed with the other parties' audio."""
        agent_pcm = DECODE[np.frombuffer(agent, dtype=np.uint8)] if agent is not None else None
        heard = [p for p in (agent_pcm, side) if p is not None]
        piece = agent if side is None and agent is not None else mulaw_encode(mix(*heard))
        message = {
            "event": "media",
            "streamSid": self.stream_sid,
            "media": {"payload": base64.b64encode(piece).decode()},
        }
        await self._safe_send(message)
        self.frames_out += 1
        if self._mix is not None and agent_pcm is not None:  # the agent's lane: the parties are in the caller's
            try:
                self._mix.agent(rtc.AudioFrame(agent_pcm.tobytes(), RATE, 1, len(agent_pcm)))
            except Exception:
                logger.exception("leg %s: recording mix failed", self.label)

    async def _safe_send(self, message: dict) -> None:
        try:
            await self._send(message)
        except Exception:  # the socket is gone: the consumer's disconnect closes the leg
            self.send_errors += 1

    def _post(self, message: dict) -> None:
        task = asyncio.get_running_loop().create_task(self._safe_send(message))
        self._posted.add(task)
        task.add_done_callback(self._posted.discard)

    _posted: set[asyncio.Task] = set()

    # --- a conference ----------------------------------------------------------------------------

    def join(self, guest: "TwilioStreamLeg") -> None:
        """Add `guest`'s party (a supervisor's stream, its own leg) to this leg's call, with the agent."""
        self._guest = guest
        self._side, self._guest_in = _party_buffer(), _party_buffer()
        guest._side, guest._tap = _party_buffer(), self._guest_spoke

    def part(self) -> None:
        """The guest has left: the caller and the agent go on alone."""
        guest, self._guest = self._guest, None
        if guest is not None:
            guest._side = guest._tap = None
        self._side = self._guest_in = None

    @property
    def guest(self) -> "TwilioStreamLeg | None":
        return self._guest

    def _guest_spoke(self, pcm: np.ndarray) -> None:
        """The guest's audio: for this leg's caller to hear, and for the agent (mixed into what this leg hands on)."""
        self._hear(pcm)
        if self._guest_in is not None:
            self._guest_in.push(pcm)

    def _hear(self, pcm: np.ndarray) -> None:
        """Another party's audio (8 kHz PCM) for this leg's party to hear, mixed with the agent's."""
        if self._side is not None and not self._closing:
            self._side.push(pcm)
            self._kick()

    # --- lifetime --------------------------------------------------------------------------------

    def remote_closed(self) -> None:
        """Twilio ended the stream (`stop`, or the socket closed): the caller hung up or the call moved on."""
        self._resolve(REMOTE_HANGUP)

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._resolve(CLOSED)
        self._queue.clear()
        self._wake.set()
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)

    @property
    def stats(self) -> dict:
        """Counters for monitoring and the bench, named as PhoneLeg's: frames in/out, lateness, pacing jitter (ms)."""
        return {
            "codec": "pcmu",
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "audio_frames_out": self.frames_out,  # only audio is sent: no silence frames on a media stream
            "underruns": self.underruns,
            "skipped": self.skipped,
            "gaps": 0,
            "queued_seconds": self.queued_seconds,
            "jitter_ms": list(self.jitter_ms),
        }

    def jitter_percentiles(self) -> dict:
        values = np.fromiter(self.jitter_ms, dtype=float)
        if not len(values):
            return {"p50": None, "p99": None, "max": None}
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(values.max())}
