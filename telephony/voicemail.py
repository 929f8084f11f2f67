"""Outbound calls answered by a machine (docs/telephony.md#outbound-calls): screen the callee's first
words (`telephony.amd`), and leave the agent's voicemail message after the greeting and its tone."""

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator

from livekit import rtc

from calls.selectors import BridgeCall
from telephony import amd
from telephony.playback import speak
from voice import io
from voice.session import InProcessMedia, create_call_session

logger = logging.getLogger(__name__)


async def listen(queue: asyncio.Queue, *gone: asyncio.Future) -> AsyncGenerator[rtc.AudioFrame, None]:
    """The callee's audio from `queue` until one of `gone` completes (the leg closed, the callee left)."""
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, *gone}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return
            yield getter.result()
    finally:
        for waiter in gone:
            waiter.cancel()


async def screen_for_machine(call: BridgeCall, frames: AsyncIterator[rtc.AudioFrame], note) -> amd.Detection:
    """Listen to the callee's first words and store the verdict (`note(key, value)`, in order with the call)."""
    detection = await amd.detect(frames)
    await note("amd", dataclasses.asdict(detection) | {"verdict": str(detection.verdict)})
    if detection.verdict == amd.Verdict.MACHINE:
        logger.info("call %s: answering machine (%s)", call.call_id, detection.reason)
        if call.voicemail_message and detection.reason != amd.Reason.BEEP:
            await amd.wait_for_greeting_end(frames)  # after the record tone the machine is already listening
    return detection


async def leave_voicemail(call: BridgeCall, leg, audio_input, models=None) -> None:
    """Say the agent's voicemail message on `leg` in its voice (a session of its own, no conversation)."""
    session = await create_call_session(
        tenant_id=call.tenant_id,
        call_id=call.call_id,
        media=InProcessMedia(audio_input, io.CallAudioOutput()),
        models=models,
    )
    try:
        await speak(session, leg, call.voicemail_message)
    finally:
        await session.models.aclose()
