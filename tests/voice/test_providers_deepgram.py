"""Deepgram live STT through livekit-plugins-deepgram against a local Deepgram WebSocket server."""

import asyncio

import pytest
from livekit.agents import stt

from tests.voice.fakes.audio import tone_frames
from tests.voice.fakes.deepgram import FakeDeepgram
from voice.engines import build_stt, provider_labels
from voice.engines.breaker import breaker_for, reset_breakers
from voice.engines.deepgram_stt import listen_url
from voice.engines.whisper_stt import OfflineWhisperSTT

STT_CONFIG = {
    "provider": "deepgram",
    "model": "nova-2",
    "language": "en-US",
    "interim_results": True,
    "punctuate": True,
    "smart_format": True,
}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


async def _transcribe(engine: stt.STT, server: FakeDeepgram, seconds: float = 1.0) -> list[stt.SpeechEvent]:
    stream = engine.stream()
    for frame in tone_frames(seconds, sample_rate=48000):  # the phone leg's rate; the plugin resamples
        stream.push_frame(frame)
    await _until(lambda: "KeepAlive" in server.control)  # an idle socket stays open on keep-alives
    stream.end_input()
    events = []
    async for event in stream:
        events.append(event)
        if event.type == stt.SpeechEventType.END_OF_SPEECH:
            break
    # The plugin's keep-alive loop would hold the ended stream open for up to 5 s: close it
    # once Deepgram has been told the audio is over.
    await _until(lambda: "CloseStream" in server.control)
    await stream.aclose()
    return events


async def _until(condition, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_interim_and_final_transcripts_arrive_as_speech_events():
    async with FakeDeepgram() as server:
        engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "dg-key", "deepgram_base_url": server.url})
        events = await _transcribe(engine, server)
        await engine.aclose()

    speech = [e for e in events if e.type != stt.SpeechEventType.RECOGNITION_USAGE]
    assert [e.type for e in speech] == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.INTERIM_TRANSCRIPT,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
    ]
    interim, final = speech[1].alternatives[0], speech[2].alternatives[0]
    assert interim.text == "I would like to"
    assert final.text == "I would like to book an appointment."
    assert final.confidence == 0.97
    assert [str(w) for w in final.words][-1] == "appointment."  # punctuated words, as asked
    assert speech[2].request_id == server.request_id


async def test_plugin_speaks_the_live_protocol_with_our_settings():
    async with FakeDeepgram() as server:
        engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "dg-key", "deepgram_base_url": server.url})
        await _transcribe(engine, server, seconds=1.0)
        await engine.aclose()

    assert server.headers["authorization"] == "Token dg-key"
    assert {k: server.query[k] for k in ("model", "language", "interim_results", "punctuate", "smart_format")} == {
        "model": "nova-2",
        "language": "en-US",
        "interim_results": "true",
        "punctuate": "true",
        "smart_format": "true",
    }
    assert (server.query["encoding"], server.query["sample_rate"], server.query["channels"]) == (
        "linear16",
        "16000",
        "1",
    )
    # 1 s at 48 kHz reaches Deepgram as 16 kHz linear16 (give or take the resampler's delay).
    assert abs(server.audio_bytes - 32000) <= 640
    assert server.control[0] == "KeepAlive"
    assert server.control[-1] == "CloseStream"
    assert "Finalize" in server.control


async def test_labels_show_deepgram_first_and_whisper_behind_it():
    async with FakeDeepgram() as server:
        engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "dg-key", "deepgram_base_url": server.listen_url})
        assert provider_labels(stt=engine) == {
            "stt": {"provider": "deepgram", "offline": False, "chain": ["deepgram", "offline-whisper"]}
        }
        await engine.aclose()


def test_without_a_key_the_offline_whisper_is_the_engine():
    engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "", "deepgram_base_url": ""})
    assert isinstance(engine, OfflineWhisperSTT)
    assert provider_labels(stt=engine)["stt"] == {
        "provider": "offline-whisper",
        "offline": True,
        "chain": ["offline-whisper"],
    }


async def _run_chain_without_audio(engine: stt.STT) -> list[stt.SpeechEvent]:
    stream = engine.stream()
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    return events


async def test_deepgram_refusing_the_socket_moves_the_chain_to_whisper():
    async with FakeDeepgram(handshake_status=503) as server:
        engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "dg-key", "deepgram_base_url": server.url})
        assert await _run_chain_without_audio(engine) == []
        labels = provider_labels(stt=engine)["stt"]
        breaker = breaker_for("deepgram", listen_url(server.url))
        # The framework then probes Deepgram again in the background (its recovery check).
        await _until(lambda: breaker.failures == 2)
        await engine.aclose()

    # The first try and one immediate retry, then the fallback, then the recovery probe.
    assert server.connections == 3
    assert labels == {"provider": "offline-whisper", "offline": True, "chain": ["deepgram", "offline-whisper"]}
    assert (breaker.failures, breaker.state) == (2, "closed")  # five are needed to open it


async def test_open_breaker_skips_deepgram_without_connecting():
    async with FakeDeepgram() as server:
        breaker = breaker_for("deepgram", listen_url(server.url))
        for _ in range(5):  # five failures in a row open Deepgram's breaker
            breaker.record_failure()
        engine = build_stt(STT_CONFIG, secrets={"deepgram_api_key": "dg-key", "deepgram_base_url": server.url})
        assert await _run_chain_without_audio(engine) == []
        assert provider_labels(stt=engine)["stt"]["provider"] == "offline-whisper"
        await engine.aclose()

    assert breaker.state == "open"
    assert server.connections == 0


def test_listen_url_accepts_a_bare_host():
    assert listen_url("") == "https://api.deepgram.com/v1/listen"
    assert listen_url("https://dg.internal") == "https://dg.internal/v1/listen"
    assert listen_url("http://127.0.0.1:9/v1/listen") == "http://127.0.0.1:9/v1/listen"
