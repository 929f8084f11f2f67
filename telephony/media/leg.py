"""One WebRTC audio leg of a call (the PBX's or a browser's), answered with aiortc.

    leg = PhoneLeg(label="pbx", on_audio=audio_input.push_frame, session_sample_rate=16000, mix=mix)
    answer_sdp = await leg.accept(offer_sdp)   # InvalidOffer (code invalid_sdp) on an SDP we cannot use
    leg.play(frame)                            # the agent's audio, any rate; paced out in 20 ms frames
    leg.clear()                                # barge-in: drop what has not been sent
    reason = await leg.wait_closed()           # "remote_hangup", "connection_failed" (also: not connected
                                               # within connect_timeout) or "closed" (our aclose)
    await leg.aclose()

Inbound, aiortc decodes the caller's Opus (48 kHz stereo) or G.711 (8 kHz) in its own thread; a
task per leg reads the decoded frames, turns them into mono at the session's rate with one
swresample context (av) and hands them on as livekit frames. Outbound, `PacedAudioTrack` decides
when each 20 ms frame leaves and encodes it to mono Opus itself (see tracks.py; aiortc encodes
G.711). Nothing here blocks the event loop or touches the database: one media process carries
many legs.

ICE: the answer carries every candidate (no trickle), gathered from this host's interfaces and the
`ice_servers` given (STUN/TURN URLs; none by default, which is right for a host with a public
address and keeps gathering instant on hosts without internet).
"""

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from livekit import rtc

from telephony.media import sdp
from telephony.media.base import CLOSED, REMOTE_HANGUP, LegLifetime, deliver_inbound
from telephony.media.sdp import InvalidOffer
from telephony.media.tracks import RATE, PacedAudioTrack, ToRate

if TYPE_CHECKING:
    from telephony.media.recording import CallMix

logger = logging.getLogger(__name__)

__all__ = ["InvalidOffer", "PhoneLeg"]

# aiortc's audio jitter buffer hands a packet to the decoder once this many later ones have arrived
# (RTCRtpReceiver: JitterBuffer(capacity=16, prefetch=4)): each caller frame reaches us that many
# packet times after it reached the leg, which the recording takes back off.
JITTER_PREFETCH = 4

CONNECTION_FAILED = "connection_failed"


class PhoneLeg(LegLifetime):
    """One WebRTC audio leg (the PBX's or a browser's), answered with aiortc."""

    def __init__(
        self,
        *,
        label: str,
        on_audio: Callable[[rtc.AudioFrame], None] | None = None,
        session_sample_rate: int = 48000,
        mix: "CallMix | None" = None,
        frame_ms: int = 20,
        ice_servers: list[str] | None = None,
        prebuffer: float = 0.04,
        connect_timeout: float = 30.0,
    ):
        self.label = label
        self._on_audio, self._mix = on_audio, mix
        self._session_rate = session_sample_rate
        self._ice_servers = ice_servers or []
        self._connect_timeout = connect_timeout  # CALL_SETUP_TIMEOUT_SECONDS: ringing/dialing before giving up
        self._setup_timer: asyncio.TimerHandle | None = None
        self._track = PacedAudioTrack(frame_ms=frame_ms, prebuffer=prebuffer, on_sent=self._sent)
        self._to_48k = ToRate(RATE)
        self._pc: RTCPeerConnection | None = None
        self._transceiver: RTCRtpTransceiver | None = None
        self._reader: asyncio.Task | None = None
        self._inbound: av.AudioResampler | None = None
        self._closed_reason: asyncio.Future | None = None
        self._closing = False
        self.codec: str | None = None
        self.frames_in = 0

    # --- signalling ------------------------------------------------------------------------------

    async def accept(self, offer_sdp: str) -> str:
        """Answer the remote's offer: set it, create and set our answer (ICE gathered); returns the answer SDP."""
        self._check_unused()
        try:
            offer_sdp = sdp.with_static_rtpmaps(offer_sdp) if isinstance(offer_sdp, str) else offer_sdp
            sdp.check_offer(offer_sdp)
            pc = self._new_connection()
            await self._apply_remote(RTCSessionDescription(sdp=offer_sdp, type="offer"), "offer")
            self._quiet_other_media()
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await self.aclose()
            raise
        self._negotiated(answer=pc.localDescription.sdp)
        return pc.localDescription.sdp

    async def offer(self) -> str:
        """Our own offer (Opus, then PCMU and PCMA), for legs we place; complete it with `accept_answer`."""
        self._check_unused()
        try:
            pc = self._new_connection()
            await pc.setLocalDescription(await pc.createOffer())
        except BaseException:
            await self.aclose()
            raise
        return pc.localDescription.sdp

    async def accept_answer(self, sdp_text: str) -> None:
        """Apply the remote's answer to our `offer()`."""
        if self._pc is None or self._pc.signalingState != "have-local-offer":
            raise InvalidOffer("There is no offer of ours waiting for this answer.")
        try:
            await self._apply_remote(RTCSessionDescription(sdp=sdp_text, type="answer"), "answer")
        except BaseException:
            await self.aclose()
            raise
        self._negotiated(answer=sdp_text)

    def _check_unused(self) -> None:
        if self._pc is not None or self._closing:
            raise InvalidOffer("This leg has already negotiated; a new call needs a new leg.", code="leg_in_use")

    def _new_connection(self) -> RTCPeerConnection:
        servers = [RTCIceServer(urls=url) for url in self._ice_servers]
        self._pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        pc.on("connectionstatechange", self._on_state)
        self._transceiver = transceiver = pc.addTransceiver(self._track, direction="sendrecv")
        transceiver.setCodecPreferences(sdp.codec_preferences())
        return pc

    def _connection(self) -> tuple[RTCPeerConnection, RTCRtpTransceiver]:
        """The peer connection and our audio transceiver: set together by _new_connection, never unset."""
        assert self._pc is not None and self._transceiver is not None
        return self._pc, self._transceiver

    async def _apply_remote(self, description: RTCSessionDescription, kind: str) -> None:
        pc, transceiver = self._connection()
        try:
            await pc.setRemoteDescription(description)
        except Exception as exc:  # aiortc raises ValueError, OperationError, AssertionError... on bad SDP
            raise InvalidOffer(f"The SDP {kind} cannot be used: {exc}") from exc
        if transceiver.mid is None:
            raise InvalidOffer(f"The SDP {kind} has no usable audio section.")

    def _quiet_other_media(self) -> None:
        """Video or extra audio sections are answered inactive: the leg carries one audio stream."""
        pc, ours = self._connection()
        for transceiver in pc.getTransceivers():
            if transceiver is not ours:
                transceiver.direction = "inactive"

    def _negotiated(self, *, answer: str) -> None:
        """Negotiated: media may flow once ICE and DTLS connect, which must happen within connect_timeout."""
        self._setup_timer = asyncio.get_running_loop().call_later(self._connect_timeout, self._setup_expired)
        _, transceiver = self._connection()
        self.codec = sdp.answered_codec(answer, mid=transceiver.mid)
        if self.codec == "opus":
            self._track.encode_opus()
        track = transceiver.receiver.track
        if track is not None and self._reader is None:
            self._reader = asyncio.create_task(self._read(track), name=f"PhoneLeg.read-{self.label}")

    # --- inbound ---------------------------------------------------------------------------------

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                self._resolve(REMOTE_HANGUP)
                return
            self.frames_in += 1
            try:
                converted = self._convert_inbound(frame)
            except (ValueError, av.FFmpegError):  # the decoded format changed (a new codec): start over
                logger.warning("leg %s: inbound audio format changed to %s", self.label, frame.layout.name)
                self._inbound = None
                continue
            # Where the frame lies on the caller's own clock (its RTP timestamp), for the recording.
            at = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
            held = JITTER_PREFETCH * frame.samples / frame.sample_rate if frame.sample_rate else 0.0
            for piece in converted:
                self._deliver(piece, at, held)
                at = at + piece.duration if at is not None else None

    def _convert_inbound(self, frame: av.AudioFrame) -> list[rtc.AudioFrame]:
        if self._inbound is None:
            self._inbound = av.AudioResampler(format="s16", layout="mono", rate=self._session_rate)
        out = []
        for piece in self._inbound.resample(frame):
            samples = piece.to_ndarray().reshape(-1)[: piece.samples]
            out.append(rtc.AudioFrame(samples.tobytes(), self._session_rate, 1, piece.samples))
        return out

    def _deliver(self, frame: rtc.AudioFrame, media_time: float | None = None, held: float = 0.0) -> None:
        mix = self._mix
        to_mix = None if mix is None else (lambda piece: mix.caller(piece, media_time=media_time, held=held))
        deliver_inbound(self.label, frame, self._on_audio, to_mix)

    # --- outbound --------------------------------------------------------------------------------

    def play(self, frame: rtc.AudioFrame) -> None:
        """Queue agent audio towards the remote: any sample rate, channel count or length."""
        if self._closing:
            return
        self._track.push(self._to_48k.convert(frame))

    def clear(self) -> None:
        """Drop the queued audio (barge-in)."""
        self._track.clear()
        self._to_48k.reset()

    @property
    def queued_seconds(self) -> float:
        return self._track.queued_seconds

    def _sent(self, pcm: bytes, due: float) -> None:
        if self._mix is None:
            return
        samples = len(pcm) // 2
        try:
            self._mix.agent(rtc.AudioFrame(pcm, RATE, 1, samples), media_time=due)
        except Exception:
            logger.exception("leg %s: recording mix failed", self.label)

    # --- lifetime --------------------------------------------------------------------------------

    def _setup_expired(self) -> None:
        if self._pc is not None and self._pc.connectionState != "connected":
            logger.warning("leg %s: not connected after %.0f s", self.label, self._connect_timeout)
            self._resolve(CONNECTION_FAILED)

    def _on_state(self) -> None:
        state = self._pc.connectionState if self._pc is not None else "closed"
        if state in ("connected", "failed", "closed") and self._setup_timer is not None:
            self._setup_timer.cancel()
            self._setup_timer = None
        if state == "failed":
            self._resolve(CONNECTION_FAILED)
        elif state == "closed":
            self._resolve(REMOTE_HANGUP)

    async def aclose(self) -> None:
        """Close the peer connection and stop reading; safe to call more than once."""
        if self._closing:
            return
        self._closing = True
        self._resolve(CLOSED)
        if self._setup_timer is not None:
            self._setup_timer.cancel()
        self._track.clear()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._pc is not None:
            await self._pc.close()
        self._track.stop()

    @property
    def stats(self) -> dict:
        """Counters for monitoring and the bench: frames in/out, underruns, pacing jitter (ms)."""
        track = self._track
        return {
            "codec": self.codec,
            "frames_in": self.frames_in,
            "frames_out": track.frames_out,
            "audio_frames_out": track.audio_frames,
            "underruns": track.underruns,
            "skipped": track.skipped,
            "gaps": track.gaps,
            "queued_seconds": track.queued_seconds,
            "jitter_ms": list(track.jitter_ms),
        }

    def jitter_percentiles(self) -> dict:
        """p50/p99/max of the pacing jitter (ms) over the kept samples."""
        values = np.fromiter(self._track.jitter_ms, dtype=float)
        if not len(values):
            return {"p50": None, "p99": None, "max": None}
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(values.max())}
