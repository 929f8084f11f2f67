"""The call recording: both legs on one timeline (checked by FFT per window), bounded memory, storage, expiry."""

import asyncio
import os
import re
import time
import wave
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from livekit import rtc

from calls.models import Recording
from core.retention import retention_apply
from telephony.media import CallMix, PhoneLeg, recording_store
from telephony.media.recording import RecordingCallNotFound
from tests import factories

MIX_RATE = 16000


class FakeClock:
    def __init__(self):
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)


def feed(mix: CallMix, clock: FakeClock, leg: str, samples: np.ndarray, rate: int, *, start: float) -> None:
    """Hand `samples` to one leg in 20 ms frames as they would arrive in real time from `start` (s)."""
    step = rate // 50
    push = mix.caller if leg == "caller" else mix.agent
    for n, begin in enumerate(range(0, len(samples), step)):
        piece = samples[begin : begin + step]
        # the caller's frame arrives once captured (at its end), the agent's as it starts playing
        clock.now = 50.0 + start + (n + (1 if leg == "caller" else 0)) * 0.02
        push(rtc.AudioFrame(piece.tobytes(), rate, 1, len(piece)))


def read(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def window(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * MIX_RATE) : int(end * MIX_RATE)]


def peaks(samples: np.ndarray, count: int = 1) -> list[float]:
    """The `count` strongest frequencies (Hz), strongest first."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    strongest = []
    for _ in range(count):
        k = int(np.argmax(spectrum))
        strongest.append(k * MIX_RATE / len(samples))
        spectrum[max(0, k - 20) : k + 20] = 0
    return strongest


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_both_legs_land_on_one_timeline_at_their_times(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock)

    feed(mix, clock, "caller", tone(440, 1.0, 16000), 16000, start=0.0)  # the caller speaks 0-1 s (session rate)
    feed(mix, clock, "agent", tone(1000, 1.0, 48000), 48000, start=2.0)  # the agent answers 2-3 s (leg rate)
    feed(mix, clock, "caller", tone(440, 1.0, 16000), 16000, start=4.0)  # both talk at once, 4-5 s
    feed(mix, clock, "agent", tone(1000, 1.0, 48000), 48000, start=4.0)
    path, duration = mix.close()

    samples, rate = read(path)
    assert rate == MIX_RATE
    assert duration == pytest.approx(5.0, abs=0.05)
    assert len(samples) == round(duration * MIX_RATE)
    assert peaks(window(samples, 0.1, 0.9)) == pytest.approx([440], abs=3)
    assert rms(window(samples, 1.2, 1.8)) == 0  # nobody spoke: the gap is silence
    assert peaks(window(samples, 2.1, 2.9)) == pytest.approx([1000], abs=3)
    assert rms(window(samples, 3.2, 3.8)) == 0
    assert sorted(peaks(window(samples, 4.1, 4.9), 2)) == pytest.approx([440, 1000], abs=3)
    # each tone starts where it was said: the first loud sample of the agent's reply is at 2.0 s
    assert np.flatnonzero(np.abs(window(samples, 1.5, 2.5)) > 500)[0] / MIX_RATE == pytest.approx(0.5, abs=0.01)


def test_the_sum_clips_instead_of_wrapping_around(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock)
    loud = np.full(MIX_RATE, 30000, dtype=np.int16)

    feed(mix, clock, "caller", loud, MIX_RATE, start=0.0)
    feed(mix, clock, "agent", loud, MIX_RATE, start=0.0)
    feed(mix, clock, "caller", -loud, MIX_RATE, start=1.0)
    feed(mix, clock, "agent", -loud, MIX_RATE, start=1.0)
    path, _ = mix.close()

    samples, _ = read(path)
    assert set(np.unique(samples)) == {32767, -32768}


def test_memory_stays_bounded_and_the_file_grows_while_the_call_runs(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock, max_lag=2.0)
    frame = tone(300, 0.02, MIX_RATE)
    most_buffered = 0.0

    for n in range(50 * 120):  # two minutes of both legs, 20 ms frames
        clock.now = 50.0 + (n + 1) * 0.02
        mix.caller(rtc.AudioFrame(frame.tobytes(), MIX_RATE, 1, len(frame)))
        mix.agent(rtc.AudioFrame(frame.tobytes(), MIX_RATE, 1, len(frame)))
        most_buffered = max(most_buffered, mix.buffered_seconds)
    written_before_close = os.path.getsize(mix.path)
    _, duration = mix.close()

    assert most_buffered <= 0.5  # both legs keep pace: flushed every 0.2 s
    assert written_before_close >= 2 * MIX_RATE * 119  # the file, not memory, holds the call
    assert duration == pytest.approx(120.0, abs=0.05)


def test_a_leg_that_goes_quiet_does_not_hold_the_other_in_memory(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock, max_lag=2.0)
    feed(mix, clock, "caller", tone(440, 0.5, MIX_RATE), MIX_RATE, start=0.0)
    most_buffered = 0.0

    for n in range(50 * 60):  # then a minute of the agent alone (the caller's leg sends nothing)
        clock.now = 50.5 + n * 0.02
        frame = tone(1000, 0.02, 48000)
        mix.agent(rtc.AudioFrame(frame.tobytes(), 48000, 1, len(frame)))
        most_buffered = max(most_buffered, mix.buffered_seconds)
    path, duration = mix.close()

    samples, _ = read(path)
    assert most_buffered <= 2.5  # max_lag plus one flush
    assert duration == pytest.approx(60.5, abs=0.05)
    assert peaks(window(samples, 0.05, 0.45)) == pytest.approx([440], abs=3)
    assert peaks(window(samples, 30.0, 31.0)) == pytest.approx([1000], abs=3)


def test_nothing_heard_means_no_recording(tmp_path):
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path))

    assert mix.close() is None
    assert list(tmp_path.iterdir()) == []


def test_a_recording_that_cannot_be_written_is_dropped_and_the_call_goes_on(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path / "gone"), clock=clock)

    feed(mix, clock, "caller", tone(440, 1.0, MIX_RATE), MIX_RATE, start=0.0)  # no exception reaches the leg

    assert mix.close() is None
    assert mix.buffered_seconds == 0


# --- storing -------------------------------------------------------------------------------------


@pytest.fixture
def disk_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "recordings": 30}
    return Path(settings.MEDIA_ROOT)


def a_recording(tmp_path, seconds: float = 1.0) -> tuple[str, float]:
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock)
    feed(mix, clock, "caller", tone(440, seconds, MIX_RATE), MIX_RATE, start=0.0)
    return mix.close()


def test_recording_store_saves_the_file_through_the_storage(tenant, disk_storage, tmp_path):
    call = factories.CallFactory(tenant=tenant)
    path, duration = a_recording(tmp_path, seconds=1.5)
    size = os.path.getsize(path)
    before = timezone.now()

    recording = recording_store(call_id=call.pk, tenant_id=tenant.pk, path=path, duration=duration)

    stored = Recording.objects.for_tenant(tenant).get(call=call)
    assert stored.pk == recording.pk
    assert re.fullmatch(rf"recordings/\d{{4}}/\d{{2}}/\d{{2}}/{call.pk}[^/]*\.wav", stored.file.name)
    assert (disk_storage / stored.file.name).read_bytes()[:4] == b"RIFF"
    assert (stored.size_bytes, stored.sample_rate, stored.channels, stored.format) == (size, MIX_RATE, 1, "wav")
    assert stored.duration_seconds == pytest.approx(1.5, abs=0.03)
    assert before + timedelta(days=30) <= stored.expires_at <= timezone.now() + timedelta(days=30)
    assert not os.path.exists(path)  # the temp file is gone


def test_storing_again_replaces_the_calls_one_recording(
    tenant, disk_storage, tmp_path, django_capture_on_commit_callbacks
):
    call = factories.CallFactory(tenant=tenant)
    first = recording_store(call_id=call.pk, tenant_id=tenant.pk, path=a_recording(tmp_path)[0], duration=1.0)
    first_file = first.file.name

    with django_capture_on_commit_callbacks(execute=True):
        second = recording_store(call_id=call.pk, tenant_id=tenant.pk, path=a_recording(tmp_path, 2.0)[0], duration=2.0)

    assert Recording.objects.for_tenant(tenant).filter(call=call).count() == 1
    assert second.pk == first.pk and second.duration_seconds == 2.0
    assert default_storage.exists(second.file.name)
    assert not default_storage.exists(first_file)


def test_another_tenants_call_is_not_found_and_nothing_is_kept(tenant, other_tenant, disk_storage, tmp_path):
    call = factories.CallFactory(tenant=other_tenant)
    path, duration = a_recording(tmp_path)

    with pytest.raises(RecordingCallNotFound) as refused:
        recording_store(call_id=call.pk, tenant_id=tenant.pk, path=path, duration=duration)

    assert refused.value.code == "call_not_found"
    assert not Recording.objects.dangerously_unscoped().exists()
    assert not os.path.exists(path)
    assert not (disk_storage / "recordings").exists()


def test_retention_deletes_an_expired_recording_with_its_file(tenant, disk_storage, tmp_path):
    call = factories.CallFactory(tenant=tenant)
    kept_call = factories.CallFactory(tenant=tenant)
    expired = recording_store(call_id=call.pk, tenant_id=tenant.pk, path=a_recording(tmp_path)[0], duration=1.0)
    kept = recording_store(call_id=kept_call.pk, tenant_id=tenant.pk, path=a_recording(tmp_path)[0], duration=1.0)
    Recording.objects.dangerously_unscoped().filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    deleted = retention_apply()

    assert deleted["recordings"] == 1
    assert list(Recording.objects.dangerously_unscoped().values_list("pk", flat=True)) == [kept.pk]
    assert not (disk_storage / expired.file.name).exists()
    assert (disk_storage / kept.file.name).exists()


def feed_timed(mix, clock, leg, samples, rate, *, media_start: float, arrive=lambda n, due: due) -> None:
    """20 ms frames stamped with their media time (from `media_start`); `arrive(n, due)` says when frame n reaches the mix."""
    step = rate // 50
    push = mix.caller if leg == "caller" else mix.agent
    for n, begin in enumerate(range(0, len(samples), step)):
        piece = samples[begin : begin + step]
        due = 50.0 + media_start + (n + (1 if leg == "caller" else 0)) * 0.02
        clock.now = arrive(n, due)
        push(rtc.AudioFrame(piece.tobytes(), rate, 1, len(piece)), media_time=media_start + n * 0.02)


def test_frames_that_arrive_late_in_bursts_land_at_their_media_time(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock)

    def stalls(n, due):  # after the first second, the loop stalls for the first half of every second:
        if n >= 50 and n % 50 < 25:  # those frames all arrive together when it ends
            return 50.0 + (n - n % 50 + 25) * 0.02
        return due

    quiet = np.zeros(MIX_RATE // 5, np.int16)
    caller = np.concatenate([tone(440, 0.8, MIX_RATE), quiet, quiet, quiet, quiet, quiet, quiet] * 3)
    agent = np.concatenate([quiet, quiet, quiet, quiet, quiet, tone(1000, 0.8, MIX_RATE), quiet] * 3)
    for n in range(len(caller) // 320):  # both legs frame by frame, as a call interleaves them
        piece = slice(n * 320, (n + 1) * 320)
        clock.now = stalls(n, 50.0 + (n + 1) * 0.02)
        mix.caller(rtc.AudioFrame(caller[piece].tobytes(), MIX_RATE, 1, 320), media_time=7.0 + n * 0.02)
        clock.now = 50.0 + n * 0.02
        mix.agent(rtc.AudioFrame(agent[piece].tobytes(), MIX_RATE, 1, 320), media_time=1000.0 + n * 0.02)
    path, duration = mix.close()

    samples, _ = read(path)
    assert duration == pytest.approx(6.0, abs=0.03)
    assert onsets(samples, 440) == pytest.approx([0.0, 2.0, 4.0], abs=0.002)
    assert onsets(samples, 1000) == pytest.approx([1.0, 3.0, 5.0], abs=0.002)


def test_a_gap_in_a_legs_media_clock_is_silence_and_a_new_stream_is_mapped_afresh(tmp_path):
    clock = FakeClock()
    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path), clock=clock)

    feed_timed(mix, clock, "caller", tone(440, 0.5, MIX_RATE), MIX_RATE, media_start=0.0)
    # nothing sent for 0.5 s (DTX, lost packets): the next frames say so by their timestamps
    feed_timed(mix, clock, "caller", tone(440, 0.5, MIX_RATE), MIX_RATE, media_start=1.0)
    # a new stream whose clock starts again at 0, spoken from 1.5 s on
    feed_timed(
        mix, clock, "caller", tone(440, 0.5, MIX_RATE), MIX_RATE, media_start=0.0, arrive=lambda n, due: due + 1.5
    )
    # and one whose clock leaps an hour ahead, spoken from 2.5 s on
    feed_timed(
        mix, clock, "caller", tone(440, 0.5, MIX_RATE), MIX_RATE, media_start=3600.0, arrive=lambda n, due: due - 3597.5
    )
    path, duration = mix.close()

    samples, _ = read(path)
    assert duration == pytest.approx(3.0, abs=0.03)
    assert onsets(samples, 440) == pytest.approx([0.0, 1.0, 2.5], abs=0.002)  # 1.0-2.0 s is one stretch
    assert rms(window(samples, 0.55, 0.95)) == 0
    assert rms(window(samples, 2.05, 2.45)) == 0


# --- both legs of a real call on one clock ----------------------------------------------------------


def onsets(samples: np.ndarray, freq: float, *, level: float = 2000.0) -> list[float]:
    """Where bursts of a tone at `freq` start in the recording (s), found per 10 ms window."""
    step = MIX_RATE // 100
    starts, inside = [], False
    for n in range(0, len(samples) - step, step):
        window = samples[n : n + step]
        loud = rms(window) > level / 2
        ours = loud and abs(peaks(samples[n : n + 4 * step])[0] - freq) < 100
        if ours and not inside:
            # the first loud sample in this window is the burst's first sample
            starts.append((n + int(np.flatnonzero(np.abs(window) > level / 4)[0])) / MIX_RATE)
        inside = loud and (ours or inside)
    return starts


class Schedule:
    """When each burst was really spoken: the first loud frame's slot on its sender's own schedule."""

    def __init__(self):
        self.caller: list[float] = []
        self.agent: list[float] = []

    def watch_caller(self, peer):
        track, recv = peer._track, peer._track.recv
        quiet = [True]

        async def logged():
            frame = await recv()
            loud = np.abs(frame.to_ndarray()).max() > 1000
            if loud and quiet[0]:
                self.caller.append(track._start + frame.pts / 48000)
            quiet[0] = not loud
            return frame

        track.recv = logged

    def watch_agent(self, leg):
        track, next_pcm = leg._track, leg._track._next_pcm
        quiet = [True]

        def logged():
            pcm, is_audio = next_pcm()
            if is_audio and quiet[0] and np.abs(np.frombuffer(pcm, dtype=np.int16)).max() > 1000:
                self.agent.append(track._start + track._slot * track.period)
                quiet[0] = False
            elif not is_audio:
                quiet[0] = True
            return pcm, is_audio

        track._next_pcm = logged


@pytest.mark.slow
async def test_a_long_call_keeps_the_caller_where_they_spoke_relative_to_the_agent(tmp_path):
    # Six turns over the real legs (an aiortc caller, the bridge's PhoneLeg), and after each caller line
    # the event loop is blocked for 0.3 s, as the speech engines block it on a busy machine: caller
    # frames then arrive late and in a burst. Placed by arrival, the caller's lane slid 0.3 s later per
    # turn, so the recording had the agent answer while the caller still talked.
    from tests.telephony.peer import CallerPeer, write_wav

    mix = CallMix(sample_rate=MIX_RATE, directory=str(tmp_path))
    leg, peer = PhoneLeg(label="rec", session_sample_rate=MIX_RATE, mix=mix), CallerPeer()
    schedule = Schedule()
    schedule.watch_caller(peer), schedule.watch_agent(leg)
    line, reply = tmp_path / "line.wav", tone(1000, 0.6, 48000)
    write_wav(line, np.concatenate([tone(440, 0.5, 48000), np.zeros(4800, dtype=np.int16)]), 48000)
    try:
        await peer.accept_answer(await leg.accept(await peer.create_offer()))
        await peer.wait_received(0.3, timeout=30)
        for _ in range(6):
            peer.say(line)
            while peer.speaking:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            time.sleep(0.3)  # the engines hold the loop: caller frames queue up meanwhile
            leg.play(rtc.AudioFrame(reply.tobytes(), 48000, 1, len(reply)))
            while leg.queued_seconds > 0:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
    finally:
        await peer.hangup()
        await leg.aclose()
    path, _ = mix.close()

    samples, _ = read(path)
    caller, agent = onsets(samples, 440), onsets(samples, 1000)
    assert (len(caller), len(agent), len(schedule.caller), len(schedule.agent)) == (6, 6, 6, 6)
    # How long after each caller line the agent spoke, as spoken and as recorded; and the lines' spacing.
    spoken = [a - c for a, c in zip(schedule.agent, schedule.caller, strict=True)]
    recorded = [a - c for a, c in zip(agent, caller, strict=True)]
    assert recorded == pytest.approx(spoken, abs=0.04)
    assert np.diff(caller) == pytest.approx(np.diff(schedule.caller), abs=0.04)
