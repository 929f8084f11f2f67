"""The agent's webhook tools, through the real integration gateway to a backend on 127.0.0.1."""

import asyncio
import json

import pytest
from aiohttp import web
from asgiref.sync import sync_to_async

from calls.models import CallEvent, ToolCall, TranscriptTurn
from integrations.models import OutboundRequest
from tests import factories
from tests.voice.fakes.base import LocalServer
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import TOOL, Caller, connected_call, fake_models, make_agent, run


class Backend(LocalServer):
    """The tenant's booking backend: answers slots after `delay`, or fails with `status`."""

    def __init__(self, *, delay: float = 0.0, status: int = 200):
        super().__init__()
        self.delay, self.status = delay, status
        self.requests: list[dict] = []
        self.in_flight = self.peak = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/tools/check_availability", self.check)

    async def check(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            self.requests.append({"body": await request.json(), "headers": dict(request.headers)})
            await asyncio.sleep(self.delay)
            if self.status != 200:
                return web.json_response({"error": "calendar is down"}, status=self.status)
            return web.json_response({"available_slots": ["9:00 AM", "2:00 PM"]})
        finally:
            self.in_flight -= 1


def scheduler(chat_ctx):
    output = last_tool_output(chat_ctx)
    if output is not None:
        if output.is_error:
            return Reply("Sorry, I couldn't check the calendar just now. Anything else?")
        slots = json.loads(output.output)["available_slots"]
        return Reply(f"I have {' and '.join(slots)}.")
    said = last_user_text(chat_ctx).lower()
    if "availability" in said:
        return Reply(tool="check_availability", arguments={"date": "2026-11-23"})
    if "three days" in said:
        dates = [{"date": f"2026-11-2{d}"} for d in (3, 4, 5)]
        return Reply(
            tool="check_availability", arguments=dates[0], more_calls=[("check_availability", a) for a in dates[1:]]
        )
    if "badly" in said:
        return Reply(tool="check_availability", arguments={"date": "next tuesday"})
    return Reply("We are open Monday to Friday.")


def tool_agent(url: str, **settings):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    tool = {**TOOL, "webhook_url": f"{url}/tools/check_availability"}
    return make_agent(tenant, tools=[tool], settings=settings)


def point_tool_at(call, url: str) -> None:
    agent = call.agent
    agent.tools = [{**agent.tools[0], "webhook_url": f"{url}/tools/check_availability"}]
    agent.save(update_fields=["tools"])


async def ask(call, lines: list[str], backend: Backend, *, replies: int):
    async with backend:
        await sync_to_async(point_tool_at)(call, backend.url)
        caller = Caller()
        await caller.connect(call, fake_models(scheduler, lines))
        await caller.wait_for_agent(1)
        for n, _ in enumerate(lines):
            await caller.say()
            await caller.wait_for_agent(replies if n == len(lines) - 1 else 2 + n, timeout=20)
        await caller.hang_up()
    return caller


@pytest.fixture
def call(transactional_db):
    return connected_call(tool_agent("http://127.0.0.1:9"))


def agent_texts(call) -> list[str]:
    turns = TranscriptTurn.objects.dangerously_unscoped().filter(call=call, speaker="agent").order_by("turn_number")
    return [t.text for t in turns]


def test_tool_result_is_spoken_and_stored(call):
    backend = Backend(delay=1.0)  # slower than the filler threshold
    run(ask, call, ["Can you check availability for tomorrow?"], backend, replies=3)

    assert backend.requests[0]["body"] == {"date": "2026-11-23"}
    assert backend.requests[0]["headers"]["X-Call-Id"] == str(call.pk)
    assert agent_texts(call) == [
        "Thank you for calling. How can I help?",
        "Let me check the calendar for you.",  # the tool's filler, while the backend worked
        "I have 9:00 AM and 2:00 PM.",
    ]
    tool_call = ToolCall.objects.dangerously_unscoped().get(call=call)
    assert tool_call.tool_name == "check_availability"
    assert tool_call.arguments == {"date": "2026-11-23"}
    assert tool_call.result == {"available_slots": ["9:00 AM", "2:00 PM"]}
    assert (tool_call.status, tool_call.http_status, tool_call.error) == ("succeeded", 200, "")
    assert 1000 <= tool_call.duration_ms < 5000
    assert tool_call.turn.text == "Can you check availability for tomorrow?"
    event = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="tool.called")
    assert event.payload["tool_name"] == "check_availability"
    assert event.payload["input"] == {"date": "2026-11-23"}
    assert event.payload["output"] == {"available_slots": ["9:00 AM", "2:00 PM"]}
    audit = OutboundRequest.objects.dangerously_unscoped().get(tenant=call.tenant)
    assert (audit.service, audit.call_session_id, audit.status_code) == ("tool-check_availability", str(call.pk), 200)


def test_the_filler_is_the_first_agent_audio_of_the_turn_and_carries_its_latency(call):
    run(ask, call, ["Can you check availability for tomorrow?"], Backend(delay=1.0), replies=3)

    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    caller, filler, answer = turns[1:]
    assert (caller.speaker, filler.text, answer.text) == (
        "caller",
        "Let me check the calendar for you.",
        "I have 9:00 AM and 2:00 PM.",
    )
    # End of the caller's speech to the filler's first audio: the turn's one end-to-end latency.
    heard_after = (filler.started_at - caller.ended_at).total_seconds() * 1000
    assert filler.metadata["e2e_ms"] == pytest.approx(heard_after, abs=1)
    assert "e2e_ms" not in answer.metadata  # the tool's answer is not the turn's first audio
    assert answer.metadata["llm_ttft_ms"] >= 0  # its own stage latencies are kept


def test_fast_tool_needs_no_filler(call):
    run(ask, call, ["Can you check availability for tomorrow?"], Backend(delay=0.0), replies=2)

    assert agent_texts(call)[1:] == ["I have 9:00 AM and 2:00 PM."]


def test_failing_tool_is_told_to_the_caller_and_the_call_goes_on(call):
    lines = ["Can you check availability for tomorrow?", "When are you open?"]
    run(ask, call, lines, Backend(status=500), replies=3)

    assert agent_texts(call)[1:] == [
        "Sorry, I couldn't check the calendar just now. Anything else?",
        "We are open Monday to Friday.",
    ]
    tool_call = ToolCall.objects.dangerously_unscoped().get(call=call)
    assert (tool_call.status, tool_call.http_status) == ("failed", 500)
    assert "HTTP 500" in tool_call.error
    event = CallEvent.objects.dangerously_unscoped().get(call=call, event_type="tool.called")
    assert event.payload["status"] == "failed"


def test_arguments_are_checked_against_the_schema(call):
    backend = Backend()
    run(ask, call, ["I will say it badly"], backend, replies=2)

    assert backend.requests == []  # nothing was sent
    tool_call = ToolCall.objects.dangerously_unscoped().get(call=call)
    assert tool_call.status == "failed"
    assert tool_call.error.startswith("invalid arguments: date: 'next tuesday' does not match")


def test_at_most_max_concurrent_tools_run_at_once(transactional_db):
    call = connected_call(tool_agent("http://127.0.0.1:9", tools={"max_concurrent_tools": 1}))
    backend = Backend(delay=0.3)
    run(ask, call, ["Check the next three days"], backend, replies=2)

    assert len(backend.requests) == 3
    assert backend.peak == 1
    assert ToolCall.objects.dangerously_unscoped().filter(call=call, status="succeeded").count() == 3


async def greeting_only(call):
    caller = Caller()
    await caller.connect(call, fake_models(scheduler, []))
    await caller.hang_up()
    return caller


def test_the_agent_gets_its_tools_and_the_built_ins(call):
    caller = run(greeting_only, call)

    assert sorted(t.id for t in caller.session.agent.tools) == ["check_availability", "end_call", "transfer_call"]


def test_no_transfer_tool_when_transfers_are_off(transactional_db):
    call = connected_call(tool_agent("http://127.0.0.1:9", conversation={"transfer_enabled": False}))
    caller = run(greeting_only, call)

    assert sorted(t.id for t in caller.session.agent.tools) == ["check_availability", "end_call"]
