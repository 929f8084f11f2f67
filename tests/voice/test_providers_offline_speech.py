"""The offline speech engines for real: piper speaks, Whisper (tiny.en) hears it back.

These load the bundled models once per module (piper about 1 s, Whisper about 0.2 s).
"""

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from tests.voice.fakes.audio import frames_from_pcm, rms, silence_frames
from voice.engines import build_vad
from voice.engines.piper_tts import OfflinePiperTTS, get_voice, speakable
from voice.engines.whisper_stt import OfflineWhisperSTT, get_model

pytestmark = pytest.mark.slow

UTTERANCE = "I would like to book an appointment on Tuesday."


@pytest.fixture(scope="module")
def models():
    return get_voice(), get_model()


@pytest.fixture(scope="module")
def spoken(models) -> rtc.AudioFrame:
    """Piper's audio of UTTERANCE (synthesized once for the module)."""
    voice, _ = models
    pcm = np.concatenate([chunk.audio_int16_array for chunk in voice.synthesize(UTTERANCE)])
    return rtc.AudioFrame(pcm.tobytes(), 22050, 1, len(pcm))


async def test_piper_speaks_a_sentence(models):
    engine = OfflinePiperTTS()
    frame = await engine.synthesize("Thank you for calling Acme Dental.").collect()
    await engine.aclose()

    assert (frame.sample_rate, frame.num_channels) == (22050, 1)
    assert 1.0 < frame.duration < 5.0
    assert rms(frame) > 500  # speech, not silence


async def test_piper_drops_tags_it_cannot_say(models):
    assert speakable("Sure [laugh] thing, [cough] see you.") == "Sure thing, see you."
    engine = OfflinePiperTTS()
    only_tag = await engine.synthesize("[laugh]").collect()
    await engine.aclose()
    assert only_tag.duration == pytest.approx(0.1)  # a short pause, not the word 'laugh'


async def test_whisper_transcribes_piper_round_trip(spoken):
    engine = OfflineWhisperSTT()
    event = await engine.recognize([spoken])

    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    text = event.alternatives[0].text.lower()
    assert "appointment" in text
    assert "tuesday" in text
    assert 0 < event.alternatives[0].confidence <= 1


async def test_stream_adapter_with_silero_cuts_the_call_audio_into_utterances(spoken):
    # The session's path for the offline STT: phone-rate frames -> Silero VAD -> one Whisper
    # result per utterance.
    resampler = rtc.AudioResampler(22050, 48000, quality=rtc.AudioResamplerQuality.HIGH)
    speech = rtc.combine_audio_frames(resampler.push(spoken) + resampler.flush())
    frames = [
        *silence_frames(0.3),
        *frames_from_pcm(np.frombuffer(speech.data, dtype=np.int16), 48000),
        *silence_frames(0.8),
    ]
    adapter = stt.StreamAdapter(stt=OfflineWhisperSTT(), vad=build_vad({"threshold": 0.5}))
    stream = adapter.stream()
    for frame in frames:
        stream.push_frame(frame)
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    await adapter.aclose()

    kinds = [e.type for e in events]
    assert kinds == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.END_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
    ]
    assert "appointment" in events[-1].alternatives[0].text.lower()


async def test_silence_gives_an_empty_transcript(models):
    event = await OfflineWhisperSTT().recognize(silence_frames(0.05, sample_rate=16000))
    assert event.alternatives[0].text == ""
