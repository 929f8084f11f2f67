"""The in-process media link on its own: caller frames in, agent frames out in real time."""

import asyncio

import pytest

from tests.voice.session_fakes import frames_of, tone
from voice.io import CallAudioInput, CallAudioOutput, split_frame


async def test_frames_pass_one_by_one_when_the_session_keeps_up():
    line = CallAudioInput()
    first, second = frames_of(tone(0.04))
    line.push_frame(first)
    assert (await line.__anext__()).duration == pytest.approx(0.02)
    line.push_frame(second)
    assert (await line.__anext__()).duration == pytest.approx(0.02)


async def test_waiting_frames_are_handed_over_together_and_old_audio_dropped():
    line = CallAudioInput(max_buffered=0.1, max_batch=0.06)
    for frame in frames_of(tone(0.2)):  # ten 20 ms frames: the session is 200 ms behind
        line.push_frame(frame)
    assert line.dropped == pytest.approx(0.1)  # the oldest 100 ms, past max_buffered
    assert (await line.__anext__()).duration == pytest.approx(0.06)
    assert (await line.__anext__()).duration == pytest.approx(0.04)
    line.close()
    with pytest.raises(StopAsyncIteration):
        await line.__anext__()


def test_split_frame_makes_phone_packets():
    (frame,) = frames_of(tone(0.25), frame_ms=250)
    assert [round(f.duration, 3) for f in split_frame(frame)] == [0.02] * 12 + [0.01]


async def test_clear_buffer_stops_playback_and_reports_how_far_it_got():
    played, finished = [], []
    out = CallAudioOutput(sink=played.append)
    out.on("playback_finished", finished.append)
    for frame in frames_of(tone(1.0), frame_ms=200):
        await out.capture_frame(frame)
    out.flush()
    await asyncio.sleep(0.3)
    out.clear_buffer()
    await asyncio.sleep(0.1)

    assert finished[0].interrupted is True
    # How far it got depends on how fast this machine ran the pacer: somewhere inside the second, and
    # exactly what was played (a busy machine may play less in 0.3 s, never more than real time).
    assert 0 < finished[0].playback_position < 1.0
    assert sum(f.duration for f in played) == pytest.approx(finished[0].playback_position)
    await out.aclose()


async def test_pause_holds_the_audio_and_resume_continues():
    played, finished = [], []
    out = CallAudioOutput(sink=played.append, speed=4.0)
    out.on("playback_finished", finished.append)
    for frame in frames_of(tone(0.8), frame_ms=200):
        await out.capture_frame(frame)
    out.flush()
    await asyncio.sleep(0.05)
    out.pause()
    await asyncio.sleep(0.02)
    held = sum(f.duration for f in played)
    await asyncio.sleep(0.3)
    assert sum(f.duration for f in played) == pytest.approx(held)  # nothing played while paused
    out.resume()
    await asyncio.sleep(0.4)
    assert finished[0].interrupted is False
    assert finished[0].playback_position == pytest.approx(0.8)
    await out.aclose()
