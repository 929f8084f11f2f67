"""The Twilio path of bench/media.py: N concurrent Twilio Media Streams into one media process.

    .venv/bin/python bench/media.py --carrier twilio --quick

Each call is what a web process runs for a Twilio call: Twilio's JSON `media` frames (base64 mu-law,
8 kHz, 20 ms) parsed as the stream consumer parses them (`core.jsonsafe`), fed to a `TwilioStreamLeg`
(mu-law tables, swresample to the session rate, the recording mix unless `--no-record`), the same agent
session as the WebRTC path, and the agent's audio back as paced `media` frames on the socket. The
callers are the fake Twilio's side of a stream (`websockets` clients in other processes, `--per-process`
each) sending a piper sentence every `--every` seconds and silence between, in 20 ms frames on their own
fixed schedule, and counting what comes back. The socket is served by the `websockets` library in the
worker process (not Uvicorn and Channels: what is measured is the call's own cost, as the WebRTC path
measures the leg and not the signalling). No DTLS/SRTP: a call costs its session, its JSON and its codec.
"""

import asyncio
import base64
import json
import multiprocessing
import resource
import time
import wave

import numpy as np

FRAME_BYTES = 160


def speech_frames(path: str) -> list[bytes]:
    """The sentence as 20 ms mu-law frames at 8 kHz (encoded once, as a carrier's caller would send it)."""
    import av

    from telephony.carriers.twilio.stream import mulaw_encode

    with wave.open(path) as wav:
        rate, pcm = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
    eight = np.concatenate([p.to_ndarray().reshape(-1)[: p.samples] for p in resampler.resample(frame)])
    data = mulaw_encode(eight)
    return [data[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff") for i in range(0, len(data), FRAME_BYTES)]


def caller_process(conn, url: str, first: int, count: int, speech: str, every: float, seconds: float) -> None:
    asyncio.run(_callers(conn, url, first, count, speech, every, seconds))


async def _callers(conn, url, first, count, speech, every, seconds) -> None:
    import websockets

    frames = speech_frames(speech)
    silence = base64.b64encode(b"\xff" * FRAME_BYTES).decode()
    spoken = [base64.b64encode(f).decode() for f in frames]
    heard = [0] * count
    sockets = [await websockets.connect(url, max_queue=None) for _ in range(count)]

    async def read(i, socket):
        async for text in socket:
            if '"media"' in text:
                heard[i] += 1

    readers = [asyncio.create_task(read(i, s)) for i, s in enumerate(sockets)]
    for i, socket in enumerate(sockets):
        start = {"streamSid": f"MZ{first + i}", "callSid": f"bench-{first + i}", "customParameters": {}}
        start["mediaFormat"] = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        await socket.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await socket.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start}))
    conn.send("connected")
    began = time.monotonic()
    cycle = int(every / 0.02)

    async def stream(i, socket):
        offset, slot = int(cycle * i / count), 0
        while (due := began + slot * 0.02) < began + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            position = (slot + offset) % cycle
            payload = spoken[position] if position < len(spoken) else silence
            media = {"track": "inbound", "chunk": str(slot), "timestamp": str(slot * 20), "payload": payload}
            await socket.send(json.dumps({"event": "media", "streamSid": f"MZ{first + i}", "media": media}))
            slot += 1
        await socket.send(json.dumps({"event": "stop", "streamSid": f"MZ{first + i}", "stop": {}}))
        await socket.close()

    await asyncio.gather(*(stream(i, s) for i, s in enumerate(sockets)))
    for reader in readers:
        reader.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send({"heard": [n * 0.02 for n in heard], "cpu": usage.ru_utime + usage.ru_stime})


class StreamCall:
    """One Twilio call in the worker: the stream leg, the in-process link and the agent session."""

    def __init__(self, call, args, recordings: str):
        from telephony.carriers.twilio.stream import TwilioStreamLeg
        from telephony.media import CallMix
        from voice.io import CallAudioInput, CallAudioOutput

        self.call, self.args = call, args
        self.input = CallAudioInput()
        self.mix = CallMix(directory=recordings) if args.record else None
        self.socket = None
        self.leg = TwilioStreamLeg(
            label=str(call.pk), send=self._send, on_audio=self.input.push_frame, mix=self.mix,
            session_sample_rate=args.session_rate,
        )  # fmt: skip
        self.output = CallAudioOutput(sink=self.leg.play, on_clear=self.leg.clear)
        self.session = None
        self.connected = asyncio.Event()

    async def _send(self, message: dict) -> None:
        await self.socket.send(json.dumps(message))

    async def serve(self, socket, first: dict) -> None:
        from core import jsonsafe

        self.socket, self.leg.stream_sid = socket, first["start"]["streamSid"]
        self.connected.set()
        async for text in socket:
            message = jsonsafe.loads(text)  # as the stream consumer reads a frame
            if message.get("event") == "media":
                self.leg.feed(base64.b64decode(message["media"]["payload"], validate=True))
            elif message.get("event") == "stop":
                break
        self.leg.remote_closed()

    async def start(self) -> None:
        import media
        import pipeline

        from voice.session import InProcessMedia, create_call_session

        models = pipeline.fake_models(self.args)
        models.tts = media.tone_tts(self.args.reply_seconds)(self.args.tts_ttfb)
        self.session = await create_call_session(
            tenant_id=self.call.tenant_id, call_id=self.call.pk, media=InProcessMedia(self.input, self.output),
            models=models,
        )  # fmt: skip
        await self.session.start()

    async def finish(self) -> str:
        import os

        reason = await self.leg.wait_closed()
        if self.session is not None:
            self.session.hangup()
            await self.session.aclose()
        await self.leg.aclose()
        if self.mix is not None and (result := self.mix.close()) is not None:
            os.remove(result[0])
        return reason

    def snapshot(self) -> dict:
        return {**self.leg.stats, "dropped": self.input.dropped}


async def run_round(n: int, args, speech: str, recordings: str):
    import media
    import pipeline
    import websockets

    calls = await asyncio.to_thread(pipeline.make_calls, n)
    streams = [StreamCall(call, args, recordings) for call in calls]

    async def handler(socket):
        async for text in socket:
            message = json.loads(text)
            if message.get("event") == "start":
                index = int(message["start"]["callSid"].removeprefix("bench-"))
                await streams[index].serve(socket, message)
                return

    server = await websockets.serve(handler, "127.0.0.1", 0, max_queue=None)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    context = multiprocessing.get_context("spawn")
    groups = []
    for first in range(0, n, args.per_process):
        mine, theirs = context.Pipe()
        count = min(args.per_process, n - first)
        target_args = (theirs, url, first, count, speech, args.every, args.seconds)
        process = context.Process(target=caller_process, args=target_args)
        process.start()
        groups.append((process, mine, count))
    for _, conn, _ in groups:
        await asyncio.to_thread(conn.recv)
    await asyncio.gather(*(call.connected.wait() for call in streams))
    called = time.monotonic()
    await asyncio.gather(*(call.start() for call in streams))
    finishing = [asyncio.create_task(call.finish()) for call in streams]
    measure_from, measure_to = time.monotonic() + media.SETTLE, called + args.seconds - media.TAIL
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    before, cpu_before, began = [call.snapshot() for call in streams], media._cpu(), time.monotonic()
    await asyncio.sleep(max(0.0, measure_to - time.monotonic()))
    after, cpu_after, window = [call.snapshot() for call in streams], media._cpu(), time.monotonic() - began
    reasons = await asyncio.gather(*finishing)
    results = [await asyncio.to_thread(conn.recv) for _, conn, _ in groups]
    for process, _, _ in groups:
        process.join()
    server.close()
    await server.wait_closed()
    return media.summarize(n, before, after, cpu_after - cpu_before, window, results, reasons)
