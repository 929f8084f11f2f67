"""Saying something on a phone leg in the agent's voice (a warm transfer's briefing, a voicemail message)."""

import asyncio


async def speak(session, leg, text: str) -> None:
    """Say `text` on `leg` with the session's voice and wait until it has been played out."""
    async for frame in session.synthesize(text):
        leg.play(frame)
    while leg.queued_seconds > 0 and not leg.closed:
        await asyncio.sleep(0.05)
