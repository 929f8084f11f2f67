"""A voice preview: a short sample of a voice from the engine a call would use now (the Voices page).

Synthesized in a web request's thread: the TTS engines it builds (piper, the Chatterbox node) register no
livekit plugin, which may only happen on the main thread.
"""

import hashlib
import json
import logging

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache

from agents.models import Voice
from agents.secrets import provider_secrets
from core.errors import ApplicationError
from tenants.models import Tenant

log = logging.getLogger(__name__)

PREVIEW_TEXT = "Hello, thanks for calling. How can I help you today?"
# A sample made while the node was down is the offline voice: keep it an hour, not forever.
PREVIEW_CACHE_SECONDS = 60 * 60


class VoicePreviewFailed(ApplicationError):
    code = "voice_preview_failed"
    status_code = 422


def voice_preview_wav(*, tenant: Tenant, voice: Voice) -> bytes:
    """A WAV of PREVIEW_TEXT in the voice, from the engine a call would use now; cached per voice and engine."""
    config = settings.VOICE_PIPELINE_DEFAULTS["tts"]
    key = _preview_key(voice, config)
    audio = cache.get(key)
    if audio is None:
        audio = _synthesize_wav(tenant, voice, config)
        cache.set(key, audio, PREVIEW_CACHE_SECONDS)
    return audio


def _preview_key(voice: Voice, config: dict) -> str:
    # Only platform settings choose the TTS engine (tenant keys are for STT and LLM), so one sample
    # serves every tenant; a changed voice or engine configuration makes a new one.
    engine = json.dumps([config, settings.CHATTERBOX_URL], sort_keys=True, default=str)
    digest = hashlib.sha256(f"{engine}|{PREVIEW_TEXT}".encode()).hexdigest()[:16]
    return f"agents:voice-preview:{voice.pk}:{voice.updated_at.timestamp()}:{digest}"


def _synthesize_wav(tenant: Tenant, voice: Voice, config: dict) -> bytes:
    # The runtime (and livekit with it) loads only when a sample is actually made.
    from livekit.agents import APIError

    from voice import engines

    voice_data = {
        "provider": voice.provider,
        "provider_voice_id": voice.provider_voice_id,
        "exaggeration": voice.exaggeration,
        "cfg_weight": voice.cfg_weight,
        "name": voice.name,
    }
    secrets = provider_secrets(tenant=tenant)  # reads the database: before the event loop runs

    async def speak():
        engine = engines.build_tts(config, voice=voice_data, secrets=secrets)
        try:
            return await engine.synthesize(PREVIEW_TEXT).collect()
        finally:
            await engine.aclose()

    try:
        frame = async_to_sync(speak)()
    except APIError as exc:
        log.warning("voice preview failed for voice %s: %s", voice.pk, exc)
        raise VoicePreviewFailed(f"This voice cannot be previewed right now: {exc}") from exc
    if frame.samples_per_channel == 0:
        raise VoicePreviewFailed("The speech engine returned no audio for this voice.")
    return frame.to_wav_bytes()
