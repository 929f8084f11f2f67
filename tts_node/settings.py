"""The node's settings (docs/tts-node.md#settings), read once from the environment.

Every setting is a `TTS_*` variable so the node runs with nothing but its own environment on a GPU
host; secrets may also come from `<NAME>_FILE`. The defaults run a bare checkout: the offline piper
engine on the CPU, voices under ./var/tts-voices, no token.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("chatterbox", "piper")
MODELS = ("turbo", "standard", "multilingual")
PRECISIONS = ("float16", "bfloat16", "float32")


class SettingsError(ValueError):
    """A setting that cannot be used; the node refuses to start with the message."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def _secret(name: str) -> str:
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return _env(name, "")


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(name: str, default: float, *, low: float, high: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name} must be within {low}-{high}, got {value}")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _env(name, default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    return _env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    engine: str = "piper"
    model: str = "turbo"
    weights_dir: Path | None = None
    device: str = "auto"
    precision: str = "float16"
    sample_rate: int = 0  # 0: the engine's own rate (24 kHz Chatterbox, 22.05 kHz piper)
    default_exaggeration: float = 0.5
    default_cfg_weight: float = 0.5
    voices_dir: Path = Path("var/tts-voices")
    voice_cache_size: int = 10
    builtin_voice_ids: tuple[str, ...] = ("default", "default_female_1")
    chunk_ms: int = 100
    buffer_chunks: int = 3
    max_text_chars: int = 2000
    max_active: int = 100
    queue_size: int = 100
    retry_after_s: int = 1
    max_speech_tokens: int = 1000
    reference_min_s: float = 5.0
    reference_max_s: float = 60.0
    reference_min_rate: int = 16000
    reference_max_bytes: int = 20 * 1024 * 1024
    watermark: bool = True
    api_token: str = field(default="", repr=False)

    @property
    def capacity(self) -> int:
        return self.max_active + self.queue_size


def load_settings() -> Settings:
    """Settings from `TTS_*` variables; raises SettingsError naming the bad one."""
    weights = _env("TTS_WEIGHTS_DIR", "")
    builtin = tuple(v.strip() for v in _env("TTS_BUILTIN_VOICE_IDS", "default,default_female_1").split(",") if v)
    return Settings(
        host=_env("TTS_HOST", "127.0.0.1"),
        port=_int("TTS_PORT", 8080, minimum=1),
        engine=_choice("TTS_ENGINE", "piper", ENGINES),
        model=_choice("TTS_MODEL", "turbo", MODELS),
        weights_dir=Path(weights) if weights else None,
        device=_env("TTS_DEVICE", "auto").lower(),
        precision=_choice("TTS_PRECISION", "float16", PRECISIONS),
        sample_rate=_int("TTS_SAMPLE_RATE", 0),
        default_exaggeration=_float("TTS_DEFAULT_EXAGGERATION", 0.5, low=0.25, high=2.0),
        default_cfg_weight=_float("TTS_DEFAULT_CFG_WEIGHT", 0.5, low=0.0, high=1.0),
        voices_dir=Path(_env("TTS_VOICES_DIR", "var/tts-voices")),
        voice_cache_size=_int("TTS_VOICE_CACHE_SIZE", 10, minimum=1),
        builtin_voice_ids=builtin or ("default",),
        chunk_ms=_int("TTS_CHUNK_MS", 100, minimum=10),
        buffer_chunks=_int("TTS_BUFFER_CHUNKS", 3, minimum=1),
        max_text_chars=_int("TTS_MAX_TEXT_CHARS", 2000, minimum=1),
        max_active=_int("TTS_MAX_ACTIVE", 100, minimum=1),
        queue_size=_int("TTS_QUEUE_SIZE", 100),
        retry_after_s=_int("TTS_RETRY_AFTER_S", 1, minimum=1),
        max_speech_tokens=_int("TTS_MAX_SPEECH_TOKENS", 1000, minimum=4),
        reference_min_s=_float("TTS_REFERENCE_MIN_S", 5.0, low=0.5, high=600),
        reference_max_s=_float("TTS_REFERENCE_MAX_S", 60.0, low=1.0, high=3600),
        reference_min_rate=_int("TTS_REFERENCE_MIN_RATE", 16000, minimum=8000),
        reference_max_bytes=_int("TTS_REFERENCE_MAX_BYTES", 20 * 1024 * 1024, minimum=1024),
        watermark=_bool("TTS_WATERMARK", True),
        api_token=_secret("TTS_API_TOKEN"),
    )
