"""Fixtures and a caller harness for the session tests: a tenant's agent, a connected call, and a
caller that speaks tone bursts into the in-process link while the agent's audio is collected."""

import asyncio
import time

import numpy as np
import pytest
from asgiref.sync import async_to_sync

from calls import services as call_services
from calls.models import Call
from calls.state_machine import CallStatus
from tests import factories
from tests.voice.session_fakes import EnergyVAD, ScriptedLLM, ScriptedSTT, ToneTTS, frames_of, silence, tone
from voice.io import CallAudioInput, CallAudioOutput
from voice.session import InProcessMedia, PipelineModels, create_call_session

SPEED = 4.0  # caller audio, agent playback and transcript pacing run this many times faster
FAST_TURNS = {
    "endpointing": {"min_delay": 0.2, "max_delay": 1.0},
    "interruption": {"min_duration": 0.3, "false_interruption_timeout": 1.0},
}
FAQ = "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM.\nQ: Where are you? A: 12 Harbour Street."
TOOL = {
    "name": "check_availability",
    "description": "List open appointment slots on a given date.",
    "parameters": {
        "type": "object",
        "properties": {"date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}},
        "required": ["date"],
    },
    "webhook_url": "http://127.0.0.1:9/tools/check_availability",
    "method": "POST",
    "timeout_seconds": 2,
    "filler": "Let me check the calendar for you.",
}
TARGETS = [{"name": "Front desk", "destination": "ext:1001", "type": "warm", "description": "Reception"}]


def make_agent(tenant, *, tools=None, name="Scheduler", greeting="Thank you for calling. How can I help?", **extra):
    agent = factories.AgentFactory(
        tenant=tenant,
        name=name,
        greeting_message=greeting,
        tools=tools if tools is not None else [TOOL],
        transfer_targets=TARGETS,
        **extra,
    )
    factories.KnowledgeDocumentFactory(agent=agent, tenant=tenant, title="Practice FAQ", content=FAQ)
    return agent


def connected_call(agent) -> Call:
    """An inbound call the bridge has answered (ringing -> connected), as the session finds it."""
    call = call_services.call_create(
        tenant=agent.tenant, agent=agent, direction=Call.Direction.INBOUND, from_number="+15557654321"
    )
    call_services.call_transition(call=call, to_status=CallStatus.RINGING)
    return call_services.call_transition(call=call, to_status=CallStatus.CONNECTED)


def run(scenario, *args, **kwargs):
    """Run an async scenario from a sync test; the session's database work (recorder, gateway audit)
    runs in the test's thread, as in a worker's database thread. Tests use `transactional_db`:
    `database_sync_to_async` closes connections that are inside a transaction (PostgreSQL)."""
    return async_to_sync(scenario)(*args, **kwargs)


# Fixtures under their own names, so that tests import them without shadowing (`call`, `agent`).
@pytest.fixture(name="agent")
def agent_fixture(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    return make_agent(tenant)


@pytest.fixture(name="call")
def call_fixture(agent):
    return connected_call(agent)


def fake_models(responder, lines, *, stt=None, llm=None, tts=None) -> PipelineModels:
    return PipelineModels(
        stt=stt or ScriptedSTT(lines),
        llm=llm or ScriptedLLM(responder),
        tts=tts or ToneTTS(),
        vad=EnergyVAD(),
    )


class Caller:
    """Drives one call: speaks tone bursts, keeps the line open with silence, collects agent audio."""

    def __init__(self, *, speed: float = SPEED, rate: int = 16000):
        self.speed, self.rate = speed, rate
        self.played: list[tuple[float, object]] = []  # (monotonic time, frame) handed to the phone leg
        self.input = CallAudioInput()
        self.output = CallAudioOutput(sink=lambda f: self.played.append((time.monotonic(), f)), speed=speed)
        self.session = None
        self.items: list = []

    @property
    def media(self) -> InProcessMedia:
        return InProcessMedia(self.input, self.output, speed=self.speed)

    async def connect(self, call, models, **kwargs):
        kwargs.setdefault("turn_handling", FAST_TURNS)
        kwargs.setdefault("session_options", {"session_close_transcript_timeout": 0.1})
        self.session = await create_call_session(
            tenant_id=call.tenant_id, call_id=call.pk, media=self.media, models=models, **kwargs
        )
        self.session.session.on("conversation_item_added", lambda ev: self.items.append(ev.item))
        await self.session.start()
        return self.session

    async def feed(self, samples: np.ndarray) -> None:
        for frame in frames_of(samples, rate=self.rate):
            self.input.push_frame(frame)
            await asyncio.sleep(frame.duration / self.speed)

    async def say(self, seconds: float = 0.6) -> None:
        """One caller utterance (the scripted STT decides the words) and the pause after it."""
        await self.feed(tone(seconds, rate=self.rate))
        await self.feed(silence(0.4, rate=self.rate))

    def agent_turns(self) -> list:
        return [i for i in self.items if getattr(i, "role", None) == "assistant"]

    async def wait_for_agent(self, count: int, timeout: float = 15.0) -> None:
        """Keep the line open until the agent has finished `count` turns in total."""
        deadline = time.monotonic() + timeout
        while len(self.agent_turns()) < count or self.session.session.agent_state == "speaking":
            if time.monotonic() > deadline or self.session.done:
                break
            await self.feed(silence(0.1, rate=self.rate))
        assert len(self.agent_turns()) >= count, [i.text_content for i in self.agent_turns()]

    async def wait_until(self, predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await self.feed(silence(0.05, rate=self.rate))

    async def hang_up(self):
        self.session.hangup()
        return await self.session.aclose()
