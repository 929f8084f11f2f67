"""The Chatterbox node client against a local node streaming chunked WAV (docs/tts-node.md#api)."""

import time

import pytest
from livekit.agents import tts

from tests.voice.fakes.audio import rms
from tests.voice.fakes.base import closed_port_url
from tests.voice.fakes.chatterbox import FakeChatterbox, wav_header
from voice.engines import build_tts, provider_labels
from voice.engines.breaker import reset_breakers
from voice.engines.chatterbox_tts import ChatterboxOptions, ChatterboxTTS, WavStreamReader
from voice.engines.piper_tts import OfflinePiperTTS

SEED_TEXT = "I'd be happy to help you with that [chuckle]. Let me check your account."
TTS_CONFIG = {"provider": "chatterbox", "model": "turbo", "default_voice_id": "default_female_1"}
VOICE = {"provider": "chatterbox", "provider_voice_id": "voice_female_01", "exaggeration": 0.7, "cfg_weight": 0.3}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


async def _synthesize(engine: tts.TTS, text: str) -> list[tuple[float, tts.SynthesizedAudio]]:
    """Every frame with the moment it reached us."""
    received = []
    async with engine.synthesize(text) as stream:
        async for audio in stream:
            received.append((time.monotonic(), audio))
    return received


def _secrets(url: str, *, with_token: bool = True) -> dict:
    return {"chatterbox_url": url, "chatterbox_token": "node-token" if with_token else ""}


async def test_request_matches_the_seed_contract():
    async with FakeChatterbox() as node:
        engine = build_tts(TTS_CONFIG, voice=VOICE, secrets=_secrets(node.url))
        await _synthesize(engine, SEED_TEXT)
        await engine.aclose()

    (request,) = node.requests
    assert request["body"] == {
        "text": SEED_TEXT,  # the [chuckle] tag goes to the node untouched
        "voice_id": "voice_female_01",
        "options": {"exaggeration": 0.7, "cfg_weight": 0.3, "streaming": True},
    }
    assert request["headers"]["authorization"] == "Bearer node-token"
    assert request["headers"]["content-type"] == "application/json"


async def test_the_node_is_sent_times_and_amounts_in_words():
    async with FakeChatterbox() as node:
        engine = build_tts(TTS_CONFIG, voice=VOICE, secrets=_secrets(node.url))
        await _synthesize(engine, "Tue 3/14 at 9:00 AM [chuckle], that's $45.50.")
        await engine.aclose()

    (request,) = node.requests
    assert request["body"]["text"] == (
        "Tuesday, March fourteenth at nine AM [chuckle], that's forty-five dollars and fifty cents."
    )


async def test_frames_arrive_while_the_node_is_still_speaking():
    async with FakeChatterbox(chunks=6, delay_s=0.08) as node:
        engine = build_tts(TTS_CONFIG, voice=VOICE, secrets=_secrets(node.url))
        received = await _synthesize(engine, "Hello there.")
        await engine.aclose()

    (finished,) = node.finished_at
    early = [audio for at, audio in received if at < finished]
    # Streamed: over half of the 0.6 s was out before the node wrote its last chunk.
    assert sum(audio.frame.duration for audio in early) >= node.audio_seconds / 2
    assert all(audio.frame.sample_rate == 24000 for _, audio in received)
    total = sum(audio.frame.duration for _, audio in received)
    assert total == pytest.approx(node.audio_seconds, abs=0.02)
    assert rms(received[0][1].frame) > 100


async def test_header_sample_rate_is_honoured():
    # The node says 16 kHz in its WAV header; the TTS declared 24 kHz, so the client resamples.
    async with FakeChatterbox(sample_rate=16000, chunks=4) as node:
        engine = ChatterboxTTS(ChatterboxOptions(base_url=node.url, voice_id="v1", sample_rate=24000))
        received = await _synthesize(engine, "Hi.")
        await engine.aclose()

    assert {audio.frame.sample_rate for _, audio in received} == {24000}
    assert sum(a.frame.duration for _, a in received) == pytest.approx(node.audio_seconds, abs=0.03)


async def test_no_token_no_authorization_header():
    async with FakeChatterbox(chunks=1) as node:
        engine = build_tts(TTS_CONFIG, voice=None, secrets=_secrets(node.url, with_token=False))
        await _synthesize(engine, "Hi.")
        await engine.aclose()

    (request,) = node.requests
    assert "authorization" not in request["headers"]
    assert request["body"]["voice_id"] == "default_female_1"  # no voice: the platform default


@pytest.mark.slow
async def test_node_503_falls_back_to_piper():
    async with FakeChatterbox(status=503) as node:
        engine = build_tts(TTS_CONFIG, voice=VOICE, secrets=_secrets(node.url))
        received = await _synthesize(engine, "Your appointment is confirmed.")
        labels = provider_labels(tts=engine)["tts"]
        await engine.aclose()

    assert len(node.requests) >= 1
    assert labels == {"provider": "offline-piper", "offline": True, "chain": ["chatterbox", "offline-piper"]}
    assert {a.frame.sample_rate for _, a in received} == {24000}  # piper's 22.05 kHz, resampled
    assert sum(a.frame.duration for _, a in received) > 1.0
    assert max(rms(a.frame) for _, a in received) > 500


@pytest.mark.slow
async def test_refused_connection_falls_back_to_piper():
    engine = build_tts(TTS_CONFIG, voice=VOICE, secrets=_secrets(closed_port_url()))
    received = await _synthesize(engine, "Hello.")
    assert provider_labels(tts=engine)["tts"]["provider"] == "offline-piper"
    await engine.aclose()
    assert sum(a.frame.duration for _, a in received) > 0.3


def test_offline_engine_without_a_url_or_for_a_piper_voice():
    assert isinstance(build_tts(TTS_CONFIG, voice=VOICE, secrets={"chatterbox_url": ""}), OfflinePiperTTS)
    piper_voice = {**VOICE, "provider": "piper"}
    assert isinstance(build_tts(TTS_CONFIG, voice=piper_voice, secrets=_secrets("http://gpu-1:8080")), OfflinePiperTTS)


def test_wav_reader_handles_a_header_split_across_chunks():
    reader = WavStreamReader()
    stream = wav_header(22050) + b"\x01\x00\x02\x00\x03"
    out = [reader.feed(stream[i : i + 7]) for i in range(0, len(stream), 7)]
    assert reader.sample_rate == 22050
    assert b"".join(out) == b"\x01\x00\x02\x00"  # whole samples only; the odd byte waits
