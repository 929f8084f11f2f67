"""Voices: the engine's built-in voice, and cloned voices stored as reference audio on disk.

Layout under `TTS_VOICES_DIR`: `<voice_id>/reference.wav` (the upload, re-encoded as PCM16 WAV at its
own rate) and `<voice_id>/voice.json` (name, duration, sample rate, when). The conditionals an engine
computes from a reference (speaker embedding, prompt tokens) are kept in memory for the
`TTS_VOICE_CACHE_SIZE` most recently used voices and recomputed on a miss.
"""

import json
import re
import secrets
import shutil
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import soundfile

from tts_node.audio import ReferenceAudio
from tts_node.engines.base import Engine
from tts_node.errors import NotFound

VOICE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
BUILTIN = "builtin"
CLONED = "cloned"


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    kind: str  # builtin | cloned
    created_at: str = ""
    duration_s: float | None = None
    sample_rate: int | None = None

    def as_json(self, engine: Engine) -> dict:
        data = asdict(self)
        # piper speaks every voice with its bundled one; say so rather than pretend it cloned.
        data["cloned_by_engine"] = self.kind == CLONED and engine.supports_cloning
        return data


class VoiceStore:
    def __init__(self, root: Path, engine: Engine, *, builtin_ids: tuple[str, ...], cache_size: int) -> None:
        self.root = root
        self._engine = engine
        self._builtin_ids = builtin_ids
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        root.mkdir(parents=True, exist_ok=True)

    def all(self) -> list[VoiceInfo]:
        builtin = [VoiceInfo(id=i, name="Built-in voice", kind=BUILTIN) for i in self._builtin_ids]
        stored = [self._read(path.parent) for path in sorted(self.root.glob("*/voice.json"))]
        return builtin + sorted(stored, key=lambda v: v.created_at)

    def get(self, voice_id: str) -> VoiceInfo:
        if voice_id in self._builtin_ids:
            return VoiceInfo(id=voice_id, name="Built-in voice", kind=BUILTIN)
        folder = self._folder(voice_id)
        if folder is None or not (folder / "voice.json").is_file():
            raise NotFound(f"Unknown voice {voice_id!r}.", code="voice_not_found")
        return self._read(folder)

    def save(self, reference: ReferenceAudio, *, name: str) -> VoiceInfo:
        """Store a validated reference under a new id (its conditionals are computed by the caller)."""
        voice_id = f"voice_{secrets.token_hex(8)}"
        folder = self.root / voice_id
        folder.mkdir(parents=True)
        soundfile.write(folder / "reference.wav", reference.samples, reference.sample_rate, subtype="PCM_16")
        info = VoiceInfo(
            id=voice_id,
            name=name or voice_id,
            kind=CLONED,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            duration_s=round(reference.duration_s, 3),
            sample_rate=reference.sample_rate,
        )
        (folder / "voice.json").write_text(json.dumps(asdict(info)))
        return info

    def delete(self, voice_id: str) -> None:
        info = self.get(voice_id)
        if info.kind == BUILTIN:
            raise NotFound(f"Voice {voice_id!r} is built in and cannot be deleted.", code="voice_builtin")
        with self._lock:
            self._cache.pop(voice_id, None)
        shutil.rmtree(self.root / voice_id)

    def reference_path(self, voice_id: str) -> Path:
        return self.root / voice_id / "reference.wav"

    def conditionals(self, voice_id: str) -> Any:
        """The engine's conditionals for a voice, from the LRU cache or computed (inference thread only)."""
        if self.get(voice_id).kind == BUILTIN:
            return self._engine.builtin_voice()
        with self._lock:
            if voice_id in self._cache:
                self._cache.move_to_end(voice_id)
                return self._cache[voice_id]
        conds = self._engine.prepare_voice(self.reference_path(voice_id))
        self.remember(voice_id, conds)
        return conds

    def remember(self, voice_id: str, conds: Any) -> None:
        with self._lock:
            self._cache[voice_id] = conds
            self._cache.move_to_end(voice_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def cached_ids(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def _folder(self, voice_id: str) -> Path | None:
        return self.root / voice_id if VOICE_ID_RE.match(voice_id) and voice_id not in (".", "..") else None

    def _read(self, folder: Path) -> VoiceInfo:
        return VoiceInfo(**json.loads((folder / "voice.json").read_text()))
