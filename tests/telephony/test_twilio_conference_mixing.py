"""The conference mix on its own: `telephony.media.mixer` (sums, clipping, lengths, the bounded party buffer)
and two TwilioStreamLegs joined (who hears whom), without a server."""

import asyncio
import base64

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from livekit import rtc

from telephony.carriers.twilio.stream import FRAME_BYTES, TwilioStreamLeg, mulaw_decode, mulaw_encode
from telephony.media.mixer import PcmBuffer, mix

TIMEOUT = 10  # seconds no load can reach: nothing here depends on how long anything took


def test_mix_sums_the_parts_and_clips_instead_of_wrapping():
    loud = np.array([30000, -30000, 100, 0], dtype=np.int16)
    louder = np.array([10000, -10000, 200, -5], dtype=np.int16)
    assert mix(loud, louder).tolist() == [32767, -32768, 300, -5]
    assert mix(loud, louder).dtype == np.int16


def test_mix_is_as_long_as_the_longest_part_the_others_padded_with_silence():
    assert mix(np.array([1, 2, 3], dtype=np.int16), np.array([10], dtype=np.int16)).tolist() == [11, 2, 3]
    assert mix(np.array([5], dtype=np.int16)).tolist() == [5]
    assert mix().tolist() == []
    assert mix(np.zeros(0, dtype=np.int16), np.array([7, 8], dtype=np.int16)).tolist() == [7, 8]


def test_mix_leaves_its_inputs_alone():
    a, b = np.array([1, 2], dtype=np.int16), np.array([3, 4], dtype=np.int16)
    mix(a, b)
    assert (a.tolist(), b.tolist()) == ([1, 2], [3, 4])


def test_a_party_buffer_gives_nothing_until_primed_then_frames_in_order():
    buffer = PcmBuffer(max_samples=100, prebuffer=6)
    buffer.push(np.array([1, 2, 3], dtype=np.int16))
    assert (buffer.ready, buffer.take(2).tolist(), len(buffer)) == (False, [0, 0], 3)  # not primed: kept
    buffer.push(np.array([4, 5, 6], dtype=np.int16))
    assert buffer.ready
    assert buffer.take(4).tolist() == [1, 2, 3, 4]
    assert buffer.take(4).tolist() == [5, 6, 0, 0]  # what it lacks is silence ...
    assert (buffer.short, buffer.ready) == (2, False)  # ... and it waits for its prebuffer again


def test_a_party_buffer_drops_its_oldest_samples_beyond_its_bound():
    buffer = PcmBuffer(max_samples=4, prebuffer=0)
    buffer.push(np.arange(1, 7, dtype=np.int16))
    assert (len(buffer), buffer.dropped) == (4, 2)
    assert buffer.take(4).tolist() == [3, 4, 5, 6]


def test_a_party_buffer_refuses_a_prebuffer_beyond_its_bound():
    with pytest.raises(ValueError):
        PcmBuffer(max_samples=4, prebuffer=5)


# --- two legs joined --------------------------------------------------------------------------------


class Socket:
    def __init__(self):
        self.sent: list[dict] = []
        self.media = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["event"] == "media":
            self.media.set()

    def heard(self) -> np.ndarray:
        payloads = [base64.b64decode(m["media"]["payload"]) for m in self.sent if m["event"] == "media"]
        return mulaw_decode(b"".join(payloads))


def level_at(samples: np.ndarray, freq: float, rate: int = 8000) -> float:
    """The amplitude of the `freq` component of `samples`."""
    t = np.arange(len(samples)) / rate
    return float(2 * abs(np.dot(samples.astype(float), np.exp(-2j * np.pi * freq * t))) / max(len(samples), 1))


def tone(freq: float, frames: int, level: int = 8000) -> list[bytes]:
    t = np.arange(frames * FRAME_BYTES) / 8000
    encoded = mulaw_encode((level * np.sin(2 * np.pi * freq * t)).astype(np.int16))
    return [encoded[i : i + FRAME_BYTES] for i in range(0, len(encoded), FRAME_BYTES)]


def joined_call(scenario):
    """Run `scenario(caller_leg, supervisor_leg, caller_socket, supervisor_socket, agent_heard)`, legs joined."""

    async def run():
        caller_socket, supervisor_socket, agent_heard = Socket(), Socket(), []
        caller = TwilioStreamLeg(
            label="c", send=caller_socket.send, on_audio=agent_heard.append, session_sample_rate=8000
        )
        supervisor = TwilioStreamLeg(label="s", send=supervisor_socket.send)
        caller.stream_sid, supervisor.stream_sid = "MZcaller", "MZsupervisor"
        caller.join(supervisor)
        try:
            return await scenario(caller, supervisor, caller_socket, supervisor_socket, agent_heard)
        finally:
            await supervisor.aclose()
            await caller.aclose()

    return async_to_sync(run)()


async def until(condition) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), TIMEOUT)


def test_the_supervisor_hears_the_caller_and_the_caller_the_supervisor_never_themselves():
    async def scenario(caller, supervisor, caller_socket, supervisor_socket, agent_heard):
        for caller_piece, supervisor_piece in zip(tone(300, 10), tone(1200, 10), strict=True):
            caller.feed(caller_piece)
            supervisor.feed(supervisor_piece)
        await until(
            lambda: len(caller_socket.heard()) >= 6 * FRAME_BYTES and len(supervisor_socket.heard()) >= 6 * FRAME_BYTES
        )
        return caller_socket.heard(), supervisor_socket.heard()

    caller_heard, supervisor_heard = joined_call(scenario)
    assert level_at(caller_heard, 1200) > 4000 and level_at(caller_heard, 300) < 200
    assert level_at(supervisor_heard, 300) > 4000 and level_at(supervisor_heard, 1200) < 200


def test_the_agent_hears_the_caller_and_the_supervisor_mixed_into_one_input():
    async def scenario(caller, supervisor, caller_socket, supervisor_socket, agent_heard):
        for caller_piece, supervisor_piece in zip(tone(300, 10), tone(1200, 10), strict=True):
            supervisor.feed(supervisor_piece)  # the supervisor's frame is buffered until the caller's comes
            caller.feed(caller_piece)
        return np.concatenate([np.frombuffer(bytes(f.data), dtype=np.int16) for f in agent_heard])

    heard = joined_call(scenario)
    assert len(heard) == 10 * FRAME_BYTES  # one frame in, one frame on: the caller's clock drives it
    later = heard[4 * FRAME_BYTES :]  # after the supervisor's 40 ms prebuffer
    assert level_at(later, 300) > 4000 and level_at(later, 1200) > 4000


def test_the_agents_voice_goes_to_both_parties_mixed_with_the_other_party():
    async def scenario(caller, supervisor, caller_socket, supervisor_socket, agent_heard):
        t = np.arange(16000 // 5) / 16000  # 200 ms at 16 kHz
        agent = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        caller.play(rtc.AudioFrame(agent.tobytes(), 16000, 1, len(agent)))
        for piece in tone(1200, 10):
            supervisor.feed(piece)
        await until(
            lambda: len(caller_socket.heard()) >= 8 * FRAME_BYTES and len(supervisor_socket.heard()) >= 8 * FRAME_BYTES
        )
        return caller_socket, supervisor_socket

    caller_socket, supervisor_socket = joined_call(scenario)
    caller_heard, supervisor_heard = caller_socket.heard(), supervisor_socket.heard()
    assert level_at(caller_heard, 440) > 2000 and level_at(caller_heard, 1200) > 2000  # agent + supervisor
    assert level_at(supervisor_heard, 440) > 2000 and level_at(supervisor_heard, 1200) < 200  # the agent, not itself
    media = [m for m in caller_socket.sent if m["event"] == "media"]
    assert {len(base64.b64decode(m["media"]["payload"])) for m in media} == {FRAME_BYTES}  # still 20 ms frames
    assert {m["streamSid"] for m in media} == {"MZcaller"}
    assert {m["streamSid"] for m in supervisor_socket.sent if m["event"] == "media"} == {"MZsupervisor"}


def test_after_the_supervisor_parts_the_caller_hears_only_the_agent_again():
    async def scenario(caller, supervisor, caller_socket, supervisor_socket, agent_heard):
        caller.part()
        for caller_piece, supervisor_piece in zip(tone(300, 10), tone(1200, 10), strict=True):
            supervisor.feed(supervisor_piece)
            caller.feed(caller_piece)
        await asyncio.sleep(0)
        heard = np.concatenate([np.frombuffer(bytes(f.data), dtype=np.int16) for f in agent_heard])
        return caller.guest, caller_socket.sent, supervisor_socket.sent, heard

    guest, caller_sent, supervisor_sent, heard = joined_call(scenario)
    assert (guest, caller_sent, supervisor_sent) == (None, [], [])
    assert level_at(heard, 300) > 4000 and level_at(heard, 1200) < 200
