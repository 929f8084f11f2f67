"""What the node asks of a speech engine.

Every engine call runs on the scheduler's one inference thread, so an engine may keep state (a
model on the GPU, espeak's globals) without locks. `stream()` is a generator whose every `next()`
does one small piece of work (a token, a sentence) and yields audio or None: the scheduler steps
many of them in turn, which is how requests interleave on one device.
"""

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SynthesisOptions:
    exaggeration: float
    cfg_weight: float
    language: str = "en"


class Engine(ABC):
    name: str = ""
    supports_tags: bool = False
    supports_cloning: bool = False
    sample_rate: int = 0
    device: str = "cpu"
    loaded: bool = False

    @property
    @abstractmethod
    def model(self) -> str:
        """The model's name as /health and /voices report it."""

    @abstractmethod
    def load(self) -> None:
        """Load the model (raises with a clear message when it cannot)."""

    @abstractmethod
    def builtin_voice(self) -> Any:
        """Conditionals of the engine's own voice (None when it needs none)."""

    @abstractmethod
    def prepare_voice(self, reference: Path) -> Any:
        """Conditionals computed from a reference recording, kept in the voice cache."""

    @abstractmethod
    def stream(self, sentences: list[str], voice: Any, options: SynthesisOptions) -> Iterator[np.ndarray | None]:
        """Audio (float32 mono at `sample_rate`) as it is generated; None for a step without audio yet."""

    def worker_context(self) -> contextlib.AbstractContextManager:
        """Entered once around the inference thread's whole life (e.g. torch.inference_mode)."""
        return contextlib.nullcontext()

    def memory(self) -> dict[str, int] | None:
        """Accelerator memory in bytes ({free, total, allocated}), None on the CPU."""
        return None
