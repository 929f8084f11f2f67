"""End to end: the platform's real Chatterbox client against the real TTS node (offline engine).

The same wire the agent session uses in production: POST /synthesize/stream with the node's
body (docs/tts-node.md#api) and the bearer token, chunked WAV back, frames out of livekit's TTS interface.
"""

import time

import pytest
from livekit.agents import APIStatusError

from agents.chatterbox_voices import upload_voice
from tests.api.test_voice_upload import wav_bytes
from tests.voice.fakes.audio import rms
from tests.voice.voice_node import TOKEN, start_node
from voice.engines.chatterbox_tts import ChatterboxOptions, ChatterboxTTS

pytestmark = pytest.mark.e2e  # the TTS node served in its own process (`make test-fast` skips them)

SEED_TEXT = "I'd be happy to help you with that [chuckle]. Let me check your account."


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = start_node(tmp_path_factory)
    yield process
    process.stop()


async def _speak(engine: ChatterboxTTS, text: str) -> list[tuple[float, object]]:
    received = []
    try:
        async with engine.synthesize(text) as stream:
            async for audio in stream:
                received.append((time.monotonic(), audio.frame))
    finally:
        await engine.aclose()
    return received


async def test_platform_client_streams_from_the_real_node(node):
    engine = ChatterboxTTS(ChatterboxOptions(base_url=node.url, voice_id="default_female_1", token=TOKEN))
    received = await _speak(engine, SEED_TEXT)

    frames = [frame for _, frame in received]
    assert {f.sample_rate for f in frames} == {24000}  # the node's 22.05 kHz piper, resampled by the client
    assert sum(f.duration for f in frames) > 2.0
    assert max(rms(f) for f in frames) > 300
    assert len(frames) >= 2
    assert received[0][0] < received[-1][0]


async def test_wrong_token_is_refused(node):
    engine = ChatterboxTTS(ChatterboxOptions(base_url=node.url, voice_id="default_female_1", token="wrong"))
    with pytest.raises(APIStatusError) as refused:
        await _speak(engine, "Hello.")
    assert refused.value.status_code == 401


async def test_a_voice_uploaded_by_the_platform_speaks(node, settings):
    settings.CHATTERBOX_URL = node.url
    settings.CHATTERBOX_API_TOKEN = TOKEN
    voice_id = upload_voice(data=wav_bytes(6.0), filename="ref.wav", content_type="audio/wav", name="Ada")
    engine = ChatterboxTTS(ChatterboxOptions(base_url=node.url, voice_id=voice_id, token=TOKEN))
    frames = [frame for _, frame in await _speak(engine, "Your table is ready.")]
    assert sum(f.duration for f in frames) > 0.8
