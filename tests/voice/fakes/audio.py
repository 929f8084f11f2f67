"""Real PCM frames for the tests: tones, silence, and piper speech cut into 20 ms frames."""

import math

import numpy as np
from livekit import rtc


def frames_from_pcm(pcm: np.ndarray, sample_rate: int, frame_ms: int = 20) -> list[rtc.AudioFrame]:
    step = sample_rate * frame_ms // 1000
    pcm = np.concatenate([pcm.astype(np.int16), np.zeros((-len(pcm)) % step, dtype=np.int16)])
    return [rtc.AudioFrame(pcm[i : i + step].tobytes(), sample_rate, 1, step) for i in range(0, len(pcm), step)]


def tone_frames(seconds: float, sample_rate: int = 48000, freq: float = 440.0) -> list[rtc.AudioFrame]:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return frames_from_pcm((6000 * np.sin(2 * math.pi * freq * t)).astype(np.int16), sample_rate)


def silence_frames(seconds: float, sample_rate: int = 48000) -> list[rtc.AudioFrame]:
    return frames_from_pcm(np.zeros(int(seconds * sample_rate), dtype=np.int16), sample_rate)


def rms(frame: rtc.AudioFrame) -> float:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
