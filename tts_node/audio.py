"""Audio on the wire and on the way in: streaming WAV, PCM16 chunks, resampling, reference checks.

The stream is what the platform's client reads (voice/engines/chatterbox_tts.py): a WAV
header whose sizes are placeholders (the length is unknown when it is sent), then PCM16 mono in
pieces of `chunk_ms`. Reference audio for cloning is decoded with libsndfile (WAV, FLAC, OGG) and
refused with a reason when it is not usable.
"""

import io
import struct
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from tts_node.errors import BadRequest

STREAMING_SIZE = 0xFFFFFFFF
REFERENCE_FORMATS = ("WAV", "FLAC", "OGG")


def wav_header(sample_rate: int, *, data_bytes: int = STREAMING_SIZE) -> bytes:
    """A PCM16 mono RIFF header; sizes are 0xFFFFFFFF for a stream of unknown length."""
    riff_size = STREAMING_SIZE if data_bytes == STREAMING_SIZE else 36 + data_bytes
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float audio in [-1, 1] (or int16) as little-endian PCM16 bytes."""
    if samples.dtype == np.int16:
        return samples.astype("<i2", copy=False).tobytes()
    clipped = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


class Resampler:
    """Streaming resampler (libsoxr) from the engine's rate to the configured output rate."""

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self._stream = (
            soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32") if source_rate != target_rate else None
        )

    def push(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)


class Chunker:
    """Cuts a PCM16 byte stream into chunks of exactly `chunk_bytes` (the last one may be shorter)."""

    def __init__(self, sample_rate: int, chunk_ms: int) -> None:
        self.chunk_bytes = max(2, sample_rate * chunk_ms // 1000 * 2)
        self._pending = bytearray()

    def push(self, pcm: bytes) -> list[bytes]:
        self._pending += pcm
        cut = len(self._pending) - len(self._pending) % self.chunk_bytes
        chunks = [bytes(self._pending[i : i + self.chunk_bytes]) for i in range(0, cut, self.chunk_bytes)]
        del self._pending[:cut]
        return chunks

    def flush(self) -> list[bytes]:
        rest, self._pending = bytes(self._pending), bytearray()
        return [rest] if rest else []


@dataclass(frozen=True)
class ReferenceAudio:
    samples: np.ndarray  # float32 mono
    sample_rate: int
    format: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def read_reference(data: bytes, *, min_s: float, max_s: float, min_rate: int) -> ReferenceAudio:
    """Decode and check reference audio for cloning; BadRequest says what is wrong."""
    if not data:
        raise BadRequest("The reference audio is empty.", code="reference_audio_empty")
    try:
        info = soundfile.info(io.BytesIO(data))
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise BadRequest(
            "The reference audio is not a readable WAV, FLAC or OGG file.", code="reference_audio_unreadable"
        ) from exc
    if info.format not in REFERENCE_FORMATS:
        raise BadRequest(f"Reference audio must be WAV, FLAC or OGG, not {info.format}.", code="reference_audio_format")
    if rate < min_rate:
        raise BadRequest(
            f"The reference audio's sample rate is {rate} Hz; at least {min_rate} Hz is needed.",
            code="reference_audio_sample_rate",
        )
    mono = samples.mean(axis=1)
    duration = len(mono) / rate
    if not min_s <= duration <= max_s:
        raise BadRequest(
            f"The reference audio lasts {duration:.1f} s; it must last {min_s:g}-{max_s:g} s.",
            code="reference_audio_length",
        )
    if float(np.sqrt(np.mean(mono**2))) < 1e-4:
        raise BadRequest("The reference audio is silent.", code="reference_audio_silent")
    return ReferenceAudio(samples=mono, sample_rate=rate, format=info.format)
