"""Silero VAD (the plugin ships its ONNX model) with the default thresholds (0.5, 250 ms speech, 300 ms silence)."""

from functools import lru_cache

from livekit.agents.vad import VAD
from livekit.plugins import silero


def build(config: dict, **_context) -> VAD:
    """The registry's builder."""
    return build_silero(config)


def build_silero(config: dict) -> VAD:
    return _load(
        float(config.get("threshold", 0.5)),
        int(config.get("min_speech_duration_ms", 250)),
        int(config.get("min_silence_duration_ms", 300)),
    )


@lru_cache(maxsize=16)
def _load(threshold: float, min_speech_ms: int, min_silence_ms: int) -> VAD:
    # One VAD per setting in the process: each stream gets its own model state from it.
    return silero.VAD.load(
        activation_threshold=threshold,
        min_speech_duration=min_speech_ms / 1000,
        min_silence_duration=min_silence_ms / 1000,
    )
