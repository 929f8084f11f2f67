"""How the dashboard words what a voice will actually sound like on this deployment."""

from django.conf import settings

from agents.engines import CHATTERBOX, Choice
from agents.models import Voice

PIPER_SPEAKER = "Piper's male US English voice (joe)"


def speaks_as(voice: Voice | None, engine: Choice) -> tuple[str, str]:
    """(what will speak, why that is not the voice's own engine, or "").

    A Chatterbox voice needs the TTS node; without one every call and sample is spoken by Piper's one
    offline voice, whatever the voice's name says ("Default female" included), and the page says so.
    """
    if engine.provider == CHATTERBOX:
        return f"This voice, on Chatterbox ({engine.model})", ""
    if voice is not None and voice.provider == Voice.Provider.PIPER:
        return PIPER_SPEAKER, ""
    if not settings.CHATTERBOX_URL:
        why = "This Chatterbox voice needs the TTS node (CHATTERBOX_URL), which this deployment does not have"
    else:
        why = "This deployment speaks with its offline engine (TTS_PROVIDER is not chatterbox)"
    return PIPER_SPEAKER, f"{why}: calls and samples are spoken by Piper instead."
