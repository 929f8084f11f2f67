"""PhoneLeg against a real aiortc caller: audio both ways checked by content, barge-in, hangup, bad SDP."""

import asyncio
import re
import threading

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from livekit import rtc

from telephony.media import InvalidOffer, PhoneLeg
from telephony.media.tracks import OPUS_BIT_RATE, RATE, OpusMonoEncoder, PacedAudioTrack
from tests.telephony.peer import HEARD_RATE, CallerPeer, speech_wav, write_wav
from voice.engines.whisper_stt import get_model, to_whisper_input

SENTENCE = "Please book me an appointment for Tuesday morning."


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def loud_span(samples: np.ndarray, level: int = 1000) -> np.ndarray:
    """From the first to the last sample above `level`: the played part, without the silence around it."""
    loud = np.flatnonzero(np.abs(samples) > level)
    assert len(loud), "nothing loud was heard"
    return samples[loud[0] : loud[-1] + 1]


def pcm_of(frames: list[rtc.AudioFrame]) -> np.ndarray:
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames])


def play(leg: PhoneLeg, samples: np.ndarray, rate: int, *, channels: int = 1, frame_ms: int = 10) -> None:
    """Hand `samples` to the leg in `frame_ms` pieces (interleaved copies when `channels` > 1)."""
    step = rate * frame_ms // 1000
    for start in range(0, len(samples), step):
        piece = np.repeat(samples[start : start + step], channels)
        leg.play(rtc.AudioFrame(piece.tobytes(), rate, channels, len(piece) // channels))


class Collector:
    """on_audio sink that can be awaited until it has `seconds` of audio."""

    def __init__(self):
        self.frames: list[rtc.AudioFrame] = []
        self.seconds = 0.0
        self._changed = asyncio.Event()

    def __call__(self, frame: rtc.AudioFrame) -> None:
        self.frames.append(frame)
        self.seconds += frame.duration
        self._changed.set()

    async def wait(self, seconds: float, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while self.seconds < seconds:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def closing():
    """Closes every leg and peer a test opened, pass or fail."""
    opened: list = []
    yield opened.append
    for thing in reversed(opened):
        await (thing.aclose() if isinstance(thing, PhoneLeg) else thing.hangup())


async def connect(leg: PhoneLeg, peer: CallerPeer) -> str:
    answer = await leg.accept(await peer.create_offer())
    await peer.accept_answer(answer)
    return answer


@pytest.fixture(scope="module")
def whisper():
    return get_model()


async def test_caller_speech_reaches_on_audio_at_the_session_rate(closing, whisper):
    speech = speech_wav(SENTENCE)
    heard = Collector()
    leg, peer = PhoneLeg(label="pbx", on_audio=heard, session_sample_rate=16000), CallerPeer(speech=speech)
    closing(leg), closing(peer)

    await connect(leg, peer)
    await heard.wait(3.0)  # the sentence is about 2.5 s

    assert leg.codec == "opus"
    assert {(f.sample_rate, f.num_channels) for f in heard.frames} == {(16000, 1)}
    segments, _ = whisper.transcribe(to_whisper_input(heard.frames), language="en", beam_size=1)
    words = set(re.findall(r"[a-z]+", " ".join(s.text for s in segments).lower()))
    assert {"appointment", "tuesday", "morning"} <= words


async def test_played_audio_reaches_the_caller_whatever_its_rate_and_channels(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer()
    closing(leg), closing(peer)
    await connect(leg, peer)

    play(leg, tone(440, 1.0, 44100), 44100, channels=2, frame_ms=50)
    assert leg.queued_seconds == pytest.approx(1.0, abs=0.01)
    await peer.wait_heard(0.8, timeout=10)

    assert dominant_frequency(loud_span(peer.heard()), HEARD_RATE) == pytest.approx(440, abs=5)
    assert leg.stats["audio_frames_out"] >= 40


async def test_clear_drops_the_queued_audio(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer()
    closing(leg), closing(peer)
    await connect(leg, peer)
    play(leg, tone(440, 3.0, 24000), 24000)
    await peer.wait_heard(0.3, timeout=10)

    leg.clear()
    sent_at_clear = leg.stats["audio_frames_out"]
    await peer.wait_received(peer.received_seconds + 1.0, timeout=10)

    assert leg.queued_seconds == 0
    assert leg.stats["audio_frames_out"] == sent_at_clear  # nothing of the reply went out after clear()
    assert peer.heard_seconds < 1.5  # of the 3 s queued


async def test_remote_hangup_resolves_wait_closed(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer()
    closing(leg)
    await connect(leg, peer)
    await peer.wait_received(0.2, timeout=10)

    await peer.hangup()

    assert await asyncio.wait_for(leg.wait_closed(), timeout=10) == "remote_hangup"
    await leg.aclose()
    await leg.aclose()  # idempotent
    assert await leg.wait_closed() == "remote_hangup"


async def test_a_leg_that_never_connects_ends_as_connection_failed(closing):
    gone = CallerPeer()
    offer = await gone.create_offer()
    await gone.hangup()  # its candidates now lead nowhere
    leg = PhoneLeg(label="pbx", connect_timeout=0.5)
    closing(leg)

    await leg.accept(offer)

    assert await asyncio.wait_for(leg.wait_closed(), timeout=10) == "connection_failed"


async def test_closing_our_side_resolves_wait_closed_as_closed(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer()
    closing(peer)
    await connect(leg, peer)

    await leg.aclose()

    assert await leg.wait_closed() == "closed"
    leg.play(rtc.AudioFrame(tone(440, 0.02, 48000).tobytes(), RATE, 1, 960))  # ignored, no error
    assert leg.queued_seconds == 0


async def test_a_pcmu_only_offer_is_answered_with_pcmu(closing, tmp_path):
    caller_tone = write_wav(tmp_path / "tone.wav", tone(300, 1.5, 8000), 8000)
    heard = Collector()
    leg = PhoneLeg(label="pbx", on_audio=heard, session_sample_rate=16000)
    peer = CallerPeer(speech=caller_tone, codecs=("PCMU",))
    closing(leg), closing(peer)

    answer = await connect(leg, peer)
    play(leg, tone(440, 1.0, 16000), 16000)
    await peer.wait_heard(0.8, timeout=10)
    await heard.wait(1.5)

    assert "PCMU/8000" in answer and "opus" not in answer.lower()
    assert leg.codec == "PCMU"
    assert dominant_frequency(loud_span(pcm_of(heard.frames)), 16000) == pytest.approx(300, abs=5)
    assert dominant_frequency(loud_span(peer.heard()), HEARD_RATE) == pytest.approx(440, abs=5)


async def test_static_payload_types_without_rtpmap_are_understood(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer(codecs=("PCMU",))
    closing(leg), closing(peer)
    terse = re.sub(r"a=rtpmap:0 PCMU/8000\r\n", "", await peer.create_offer())
    assert "a=rtpmap" not in terse

    answer = await leg.accept(terse)

    assert leg.codec == "PCMU"
    assert "PCMU/8000" in answer


async def _video_only_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()
    return pc.localDescription.sdp


async def _caller_offer(**kwargs) -> str:
    peer = CallerPeer(**kwargs)
    try:
        return await peer.create_offer()
    finally:
        await peer.hangup()


async def _offer_without_fingerprint() -> str:
    return re.sub(r"a=fingerprint:[^\r\n]*\r\n", "", await _caller_offer())


async def _offer_without_ice_credentials() -> str:
    return re.sub(r"a=ice-(ufrag|pwd):[^\r\n]*\r\n", "", await _caller_offer())


BAD_OFFERS = {
    "empty": lambda: "",
    "garbage": lambda: "this is not sdp\r\n",
    "broken media line": lambda: "v=0\r\nm=audio x RTP/AVP\r\n",
    "video only": _video_only_offer,
    "no codec we support (G.722 only)": lambda: _caller_offer(codecs=("G722",)),
    "no DTLS fingerprint": _offer_without_fingerprint,
    "no ICE credentials (refused by aiortc)": _offer_without_ice_credentials,
}


@pytest.mark.parametrize("case", list(BAD_OFFERS))
async def test_a_bad_offer_is_refused_without_leaving_tasks_behind(case):
    made = BAD_OFFERS[case]()
    offer = await made if asyncio.iscoroutine(made) else made
    await asyncio.sleep(0.05)  # let the helper peers' own tasks finish
    tasks_before, threads_before = asyncio.all_tasks(), threading.active_count()
    leg = PhoneLeg(label="pbx")

    with pytest.raises(InvalidOffer) as refused:
        await leg.accept(offer)

    await asyncio.sleep(0)
    assert refused.value.code == "invalid_sdp"
    assert asyncio.all_tasks() - tasks_before == set()
    assert threading.active_count() == threads_before
    assert await leg.wait_closed() == "closed"


async def test_a_leg_answers_only_once(closing):
    leg, peer = PhoneLeg(label="pbx"), CallerPeer()
    closing(leg), closing(peer)
    await connect(leg, peer)

    with pytest.raises(InvalidOffer) as refused:
        await leg.accept(await _caller_offer())

    assert refused.value.code == "leg_in_use"


async def test_we_can_offer_and_take_the_callers_answer(closing):
    """The other direction: the leg offers (an outbound call's browser leg, say)."""
    heard = Collector()
    leg = PhoneLeg(label="browser")
    answerer = PhoneLeg(label="far-end", on_audio=heard)  # any aiortc answerer will do
    closing(leg), closing(answerer)

    await leg.accept_answer(await answerer.accept(await leg.offer()))
    play(leg, tone(440, 1.0, 48000), 48000)
    await heard.wait(1.2)

    assert leg.codec == answerer.codec == "opus"
    assert dominant_frequency(loud_span(pcm_of(heard.frames)), 48000) == pytest.approx(440, abs=5)


# --- the pacing, on a clock the test moves ----------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_track_resyncs_after_a_long_stall_instead_of_bursting():
    clock = FakeClock()
    track = PacedAudioTrack(clock=clock)
    first = await track.recv()
    clock.now += 0.02
    second = await track.recv()

    clock.now += 0.5  # the loop stalled for half a second
    after = await track.recv()

    assert (first.pts, second.pts) == (0, 960)
    assert track.skipped == 24  # slots 2..25 were due during the stall and are not sent
    assert after.pts == (2 + 24) * 960
    assert track.jitter_ms[-1] == pytest.approx(0.0, abs=1e-6)
    assert after.sample_rate == RATE and after.samples == 960 and after.layout.name == "mono"


async def test_the_track_catches_up_a_short_delay_and_counts_late_audio_as_underruns():
    clock = FakeClock()
    track = PacedAudioTrack(clock=clock, prebuffer=0.0)
    await track.recv()  # slot 0: silence, nothing queued
    track.push(tone(440, 0.1, 48000).tobytes())

    clock.now += 0.02 + 0.05  # slot 1 is 50 ms late: audio was queued, it goes out late
    late = await track.recv()
    on_time = await track.recv()  # slot 2 is 30 ms late: still catching up, sent at once

    assert track.skipped == 0
    assert (late.pts, on_time.pts) == (960, 1920)
    assert track.underruns == 2
    assert list(track.jitter_ms) == pytest.approx([0.0, 50.0, 30.0])


async def test_the_track_prebuffers_a_reply_and_pads_its_last_frame():
    clock = FakeClock()
    track = PacedAudioTrack(clock=clock, prebuffer=0.04)
    track.push(np.full(1200, 1000, dtype=np.int16).tobytes())  # 25 ms: under the prebuffer

    waiting = await track.recv()
    clock.now += 0.02
    still_waiting = await track.recv()
    clock.now += 0.021  # the audio has now waited over 40 ms: it plays even though it is short
    first = await track.recv()
    clock.now += 0.02
    last = await track.recv()

    assert not waiting.to_ndarray().any() and not still_waiting.to_ndarray().any()
    assert (first.to_ndarray() == 1000).all()
    assert (last.to_ndarray()[0, :240] == 1000).all() and not last.to_ndarray()[0, 240:].any()
    assert track.queued_seconds == 0 and track.audio_frames == 2 and track.underruns == 0


def test_the_opus_encoder_skips_silence_without_changing_a_bit():
    """Reusing the settled silence packet gives exactly what running libopus on every frame gives."""
    plain = av.CodecContext.create("libopus", "w")
    plain.format, plain.layout, plain.sample_rate, plain.bit_rate = "s16", "mono", RATE, OPUS_BIT_RATE
    plain.options = {"application": "voip"}
    encoder = OpusMonoEncoder()
    speech = [tone(440, 0.02, RATE).tobytes()] * 5
    frames = [(pcm, False) for pcm in speech] + [(bytes(1920), True)] * 20 + [(pcm, False) for pcm in speech]

    ours, theirs = [], []
    for n, (pcm, silent) in enumerate(frames):
        packet = encoder.encode(pcm, pts=n * 960, silent=silent)
        ours.append((bytes(packet), packet.pts))
        reference = av.AudioFrame.from_ndarray(np.frombuffer(pcm, np.int16).reshape(1, -1), format="s16", layout="mono")
        reference.sample_rate, reference.pts = RATE, n * 960
        theirs.append((bytes(plain.encode(reference)[0]), n * 960))

    assert ours == theirs
    assert len({data for data, _ in ours[10:25]}) == 1  # one packet stands for every silent frame
