"""A real aiortc peer standing in for the phone caller (the PBX's side of a call's WebRTC leg).

It offers (non-trickle, Opus unless told otherwise), plays WAV audio in real time in 20 ms frames,
silence otherwise, and records what it hears at 16 kHz mono so tests can check the content (an FFT,
or the offline Whisper). It shares no code with `telephony.media`: a bug there cannot hide itself
by being on both ends. It imports nothing from Django, so a benchmark can run many of these in a
process of their own.

    speech = speech_wav("When are you open on Saturday?")   # piper, cached per sentence
    caller = CallerPeer(speech=speech)
    answer = await leg.accept(await caller.create_offer())
    await caller.accept_answer(answer)
    await caller.wait_heard(1.0, timeout=10)
    caller.heard_wav(tmp_path / "heard.wav")
    await caller.hangup()
"""

import asyncio
import collections
import fractions
import hashlib
import shutil
import tempfile
import time
import wave
from pathlib import Path

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48000
FRAME = RATE // 50  # 20 ms
HEARD_RATE = 16000
LOUD_RMS = 200  # int16 RMS above which a received frame counts as heard (about -44 dBFS)
SPEECH_CACHE = Path(tempfile.gettempdir()) / "voiceapp-test-speech"


def speech_wav(text: str, path: str | Path | None = None) -> Path:
    """A WAV of `text` spoken by piper's bundled joe-us voice (22.05 kHz), cached per text."""
    SPEECH_CACHE.mkdir(parents=True, exist_ok=True)
    cached = SPEECH_CACHE / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}.wav"
    if not cached.exists():
        from voice.engines.piper_tts import get_voice  # heavy: only when a sentence is new

        partial = cached.with_suffix(".part")
        with wave.open(str(partial), "wb") as wav:
            get_voice().synthesize_wav(text, wav)
        partial.replace(cached)
    if path is None:
        return cached
    shutil.copyfile(cached, path)
    return Path(path)


def read_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """A WAV file (any rate, mono or stereo, 16-bit) as mono int16 at `rate`."""
    with wave.open(str(path)) as wav:
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="stereo" if channels == 2 else "mono")
    frame.sample_rate = source_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    pieces = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([piece.to_ndarray().reshape(-1)[: piece.samples] for piece in pieces])


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return Path(path)


def opus_packets(samples: np.ndarray) -> list[bytes]:
    """48 kHz mono samples as 20 ms Opus packets (mono, 32 kbit/s), from a fresh encoder."""
    codec = av.CodecContext.create("libopus", "w")
    codec.format, codec.layout, codec.sample_rate, codec.bit_rate = "s16", "mono", RATE, 32000
    packets = []
    for start in range(0, len(samples), FRAME):
        piece = np.pad(samples[start : start + FRAME], (0, max(0, start + FRAME - len(samples))))
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, start
        packets += [bytes(packet) for packet in codec.encode(frame)]
    return packets


class _SpeakingTrack(MediaStreamTrack):
    """Plays queued audio in real time, 20 ms a frame; silence when none is queued.

    Queued items are 48 kHz mono frames (aiortc encodes them) or, for benchmarks that run many
    callers in one process, Opus packets encoded once per WAV (`preencoded`).
    """

    kind = "audio"

    def __init__(self, *, preencoded: bool = False):
        super().__init__()
        self.preencoded = preencoded
        self.queue: collections.deque[np.ndarray | bytes] = collections.deque()
        self._silence = opus_packets(np.zeros(FRAME * 4, dtype=np.int16))[-1] if preencoded else None
        self._start: float | None = None
        self._count = 0

    def say(self, samples: np.ndarray | list[bytes]) -> None:
        if isinstance(samples, list):
            self.queue.extend(samples)
            return
        for start in range(0, len(samples), FRAME):
            piece = samples[start : start + FRAME]
            self.queue.append(np.pad(piece, (0, FRAME - len(piece))))

    async def recv(self) -> av.AudioFrame | av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count * FRAME / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        item = self.queue.popleft() if self.queue else None
        pts, self._count = self._count * FRAME, self._count + 1
        if self.preencoded:
            packet = av.Packet(item if item is not None else self._silence)
            packet.pts, packet.time_base = pts, fractions.Fraction(1, RATE)
            return packet
        samples = item if item is not None else np.zeros(FRAME, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, pts, fractions.Fraction(1, RATE)
        return frame


class CallerPeer:
    """A real aiortc peer acting as the phone caller (the PBX's side): plays WAV audio, records what it hears."""

    def __init__(
        self,
        *,
        speech: str | Path | None = None,
        codecs: tuple[str, ...] = ("opus",),
        record: bool = True,
        preencoded: bool = False,
    ):
        """`record=False` keeps only the counts of what was heard; `preencoded=True` (Opus only) encodes
        each WAV once and replays its packets: for benchmarks, where the callers' CPU is not what is
        measured."""
        self._track = _SpeakingTrack(preencoded=preencoded and codecs[0] == "opus")
        self._packets: dict[str, list[bytes]] = {}
        self._codecs = codecs
        self._record = record
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._heard: list[np.ndarray] = []
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=HEARD_RATE)
        self._reader: asyncio.Task | None = None
        self._progress = asyncio.Condition()
        self.heard_seconds = 0.0  # non-silent audio received
        self.received_seconds = 0.0  # all audio received
        if speech is not None:
            self.say(speech)

    async def create_offer(self) -> str:
        """A complete (non-trickle) offer with only `codecs` (Opus by default)."""
        transceiver = self._pc.addTransceiver(self._track, direction="sendrecv")
        wanted = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.split("/")[1] in self._codecs]
        transceiver.setCodecPreferences(wanted)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        return self._pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        track = self._pc.getTransceivers()[0].receiver.track
        self._reader = asyncio.create_task(self._listen(track), name="CallerPeer.listen")

    async def answer_offer(self, sdp: str) -> str:
        """Answer the other side's offer (a call we place: GoTo's side of a web call); returns the answer."""
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        transceiver = self._pc.getTransceivers()[0]
        transceiver.sender.replaceTrack(self._track)
        transceiver.direction = "sendrecv"
        wanted = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.split("/")[1] in self._codecs]
        transceiver.setCodecPreferences(wanted)
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._reader = asyncio.create_task(self._listen(transceiver.receiver.track), name="CallerPeer.listen")
        return self._pc.localDescription.sdp

    def say(self, wav_path: str | Path) -> None:
        """Queue more speech (any WAV); it plays in real time after what is already queued."""
        if not self._track.preencoded:
            self._track.say(read_wav(wav_path))
            return
        if str(wav_path) not in self._packets:
            self._packets[str(wav_path)] = opus_packets(read_wav(wav_path))
        self._track.say(self._packets[str(wav_path)])

    @property
    def speaking(self) -> bool:
        return bool(self._track.queue)

    async def _listen(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self._record:
                for piece in self._resampler.resample(frame):
                    self._hear(piece.to_ndarray().reshape(-1)[: piece.samples].copy(), HEARD_RATE)
            else:
                self._hear(frame.to_ndarray().reshape(-1), frame.sample_rate * len(frame.layout.channels))
            async with self._progress:
                self._progress.notify_all()

    def _hear(self, samples: np.ndarray, rate: int) -> None:
        seconds = len(samples) / rate
        self.received_seconds += seconds
        if len(samples) and np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > LOUD_RMS:
            self.heard_seconds += seconds
        if self._record:
            self._heard.append(samples)

    async def wait_heard(self, seconds_of_audio: float, timeout: float) -> None:
        """Until `seconds_of_audio` of non-silent audio has been heard (TimeoutError after `timeout`)."""
        async with asyncio.timeout(timeout):
            async with self._progress:
                await self._progress.wait_for(lambda: self.heard_seconds >= seconds_of_audio)

    async def wait_received(self, seconds: float, timeout: float) -> None:
        """Until `seconds` of audio (silence included) has been received since the start."""
        async with asyncio.timeout(timeout):
            async with self._progress:
                await self._progress.wait_for(lambda: self.received_seconds >= seconds)

    def heard(self) -> np.ndarray:
        """Everything received so far, 16 kHz mono int16."""
        return np.concatenate(self._heard) if self._heard else np.zeros(0, dtype=np.int16)

    def heard_wav(self, path: str | Path) -> Path:
        """What it heard, as a 16 kHz mono WAV."""
        return write_wav(path, self.heard(), HEARD_RATE)

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState

    async def hangup(self) -> None:
        """Close the peer connection: the other side sees the leg end."""
        await self._pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
