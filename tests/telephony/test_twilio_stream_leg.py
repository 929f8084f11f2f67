"""TwilioStreamLeg on its own: caller audio in, the agent's audio out in 20 ms media frames, marks, clear."""

import asyncio
import base64

import numpy as np
from asgiref.sync import async_to_sync
from livekit import rtc

from telephony.carriers.twilio.stream import FRAME_BYTES, TwilioStreamLeg, mulaw_encode

TIMEOUT = 10  # seconds no load can reach: the assertions never depend on how long anything took


def agent_audio(seconds: float, rate: int = 16000) -> rtc.AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), rate, 1, len(samples))


class Socket:
    def __init__(self):
        self.sent: list[dict] = []
        self.marked = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["event"] == "mark":
            self.marked.set()

    def kinds(self) -> list[str]:
        return [m["event"] for m in self.sent]


def test_caller_audio_reaches_the_session_at_its_rate():
    heard: list[rtc.AudioFrame] = []

    async def scenario():
        leg = TwilioStreamLeg(label="t", send=Socket().send, on_audio=heard.append, session_sample_rate=16000)
        tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(800) / 8000)).astype(np.int16)  # 100 ms
        encoded = mulaw_encode(tone)
        for offset in range(0, len(encoded), FRAME_BYTES):
            leg.feed(encoded[offset : offset + FRAME_BYTES])
        await leg.aclose()
        return leg.frames_in

    assert async_to_sync(scenario)() == 5
    assert {(f.sample_rate, f.num_channels) for f in heard} == {(16000, 1)}
    assert abs(sum(f.samples_per_channel for f in heard) - 1600) <= 32  # swresample holds back a little


def test_a_reply_goes_out_in_20_ms_media_frames_then_one_mark():
    async def scenario():
        socket = Socket()
        leg = TwilioStreamLeg(label="t", send=socket.send)
        leg.stream_sid = "MZ1"
        leg.play(agent_audio(0.2))  # 200 ms at 16 kHz
        await asyncio.wait_for(socket.marked.wait(), TIMEOUT)
        await leg.aclose()
        return socket.sent

    sent = async_to_sync(scenario)()
    assert [m["event"] for m in sent] == ["media"] * 10 + ["mark"]
    assert {len(base64.b64decode(m["media"]["payload"])) for m in sent[:-1]} == {FRAME_BYTES}
    assert {m["streamSid"] for m in sent} == {"MZ1"}
    assert sent[-1]["mark"] == {"name": "reply-1"}


def test_clear_drops_the_queue_and_tells_twilio_to_drop_its_own():
    async def scenario():
        socket = Socket()
        leg = TwilioStreamLeg(label="t", send=socket.send)
        leg.stream_sid = "MZ1"
        leg.play(agent_audio(1.0))
        leg.clear()  # barge-in before the first slot
        await asyncio.sleep(0)  # let the posted clear go out
        await asyncio.sleep(0)
        queued = leg.queued_seconds
        await leg.aclose()
        return socket.sent, queued

    sent, queued = async_to_sync(scenario)()
    assert queued == 0
    assert sent == [{"event": "clear", "streamSid": "MZ1"}]


def test_the_leg_says_why_it_ended():
    async def scenario():
        ended_by_twilio = TwilioStreamLeg(label="a", send=Socket().send)
        ended_by_twilio.remote_closed()
        ours = TwilioStreamLeg(label="b", send=Socket().send)
        await ours.aclose()
        ours.play(agent_audio(0.1))  # after the end: ignored
        return await ended_by_twilio.wait_closed(), await ours.wait_closed(), ours.closed, ours.queued_seconds

    assert async_to_sync(scenario)() == ("remote_hangup", "closed", True, 0)
