"""Callers with other voices than ours: the Flite speech synthesizer's voices (Debian's `flite` package).

The platform speaks with piper's bundled voice, and most tests' callers do too. These are different
voices (a US woman, a Scottish man, US men), synthesized by a different engine, so what the agent hears in
tests that use them was not shaped by the voice its own tests were written with. CI installs `flite`
(.ci/run) and sets OTHER_VOICES_REQUIRED=1, so the tests that need it fail there instead of skipping.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

VOICES = ("slt", "awb", "rms", "kal16")  # US female, Scottish male, US male, US male (diphone)
CACHE = Path(tempfile.gettempdir()) / "voiceapp-test-flite"


def flite() -> str:
    """The flite binary, or skip (fail under OTHER_VOICES_REQUIRED=1)."""
    found = shutil.which("flite")
    if found is None:
        reason = "no `flite` binary (Debian: apt install flite)"
        if os.environ.get("OTHER_VOICES_REQUIRED") == "1":
            pytest.fail(f"OTHER_VOICES_REQUIRED=1 but {reason}")
        pytest.skip(reason)
    return found


def flite_wav(text: str, voice: str) -> Path:
    """A WAV of `text` in one of Flite's voices (16 or 8 kHz mono), cached per voice and text."""
    binary = flite()
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{voice}-{hashlib.sha256(text.encode()).hexdigest()[:20]}.wav"
    if not path.exists():
        partial = path.with_suffix(".part.wav")
        subprocess.run([binary, "-voice", voice, "-t", text, "-o", str(partial)], check=True, timeout=60)
        partial.replace(path)
    return path
