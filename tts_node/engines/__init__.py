"""Speech engines: Chatterbox on the GPU (turbo, standard, multilingual) and piper offline."""

from tts_node.engines.base import Engine, SynthesisOptions
from tts_node.settings import Settings


def build_engine(settings: Settings) -> Engine:
    """The configured engine, not loaded yet (loading runs on the inference thread)."""
    if settings.engine == "chatterbox":
        from tts_node.engines.chatterbox import ChatterboxEngine

        return ChatterboxEngine(settings)
    from tts_node.engines.piper import PiperEngine

    return PiperEngine()


__all__ = ["Engine", "SynthesisOptions", "build_engine"]
