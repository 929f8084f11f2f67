"""Claude through livekit-plugins-anthropic against a local Messages API server (SSE)."""

import asyncio
import json

import pytest
from livekit.agents import llm

from tests.voice.fakes.anthropic import FakeAnthropic, overloaded, text, tool_use
from voice.engines import build_llm, provider_labels
from voice.engines.breaker import breaker_for, reset_breakers
from voice.engines.responder.llm import LocalResponder

SONNET, HAIKU = "claude-sonnet-4-6", "claude-haiku-4-5"
LLM_CONFIG = {"provider": "anthropic", "model": SONNET, "temperature": 0.7, "max_tokens": 1024, "streaming": True}
KNOWLEDGE = [
    {"title": "Opening hours", "content": "Q: What are your opening hours?\nA: We are open 8 to 6, Monday to Friday."}
]
PROFILE = {"name": "Acme Dental", "greeting_message": "Thanks for calling Acme Dental, how can I help?"}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


@llm.function_tool(
    raw_schema={
        "name": "check_availability",
        "description": "Check which appointment slots are free on a date",
        "parameters": {
            "type": "object",
            "properties": {"date": {"type": "string", "description": "ISO date"}},
            "required": ["date"],
        },
    }
)
async def check_availability(raw_arguments: dict) -> str:
    return "{}"


def _chat(text_: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are the receptionist of Acme Dental.")
    ctx.add_message(role="user", content=text_)
    return ctx


async def _until(condition, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


def _build(server: FakeAnthropic, **config) -> llm.LLM:
    secrets = {"anthropic_api_key": "fake-ant-test", "anthropic_base_url": server.url}
    return build_llm({**LLM_CONFIG, **config}, secrets=secrets, knowledge=KNOWLEDGE, agent_profile=PROFILE)


async def test_text_streams_through_as_chunks():
    async with FakeAnthropic() as server:
        server.plan(SONNET, text("We are ", "open until ", "six today."))
        engine = _build(server)
        chunks = [c async for c in engine.chat(chat_ctx=_chat("When do you close?"))]
        await engine.aclose()

    pieces = [c.delta.content for c in chunks if c.delta and c.delta.content]
    assert pieces == ["We are ", "open until ", "six today."]
    usage = [c.usage for c in chunks if c.usage][-1]
    assert (usage.prompt_tokens, usage.completion_tokens) == (42, 13)


async def test_request_carries_the_agent_settings():
    async with FakeAnthropic() as server:
        engine = _build(server, temperature=0.3, max_tokens=256)
        await engine.chat(chat_ctx=_chat("Hello")).collect()
        await engine.aclose()

    (request,) = server.requests
    body, headers = request["body"], request["headers"]
    assert headers["x-api-key"] == "fake-ant-test"
    assert "anthropic-version" in headers
    assert (body["model"], body["max_tokens"], body["temperature"], body["stream"]) == (SONNET, 256, 0.3, True)
    assert body["system"][0]["text"] == "You are the receptionist of Acme Dental."
    assert body["messages"][-1]["role"] == "user"
    assert body["messages"][-1]["content"][0]["text"] == "Hello"


async def test_tool_use_turn_becomes_a_function_call():
    async with FakeAnthropic() as server:
        server.plan(SONNET, tool_use("check_availability", {"date": "2026-11-24"}, preamble="Let me check."))
        engine = _build(server)
        response = await engine.chat(chat_ctx=_chat("Anything free on Tuesday?"), tools=[check_availability]).collect()
        await engine.aclose()

    assert response.text == "Let me check."
    (call,) = response.tool_calls
    assert (call.name, json.loads(call.arguments), call.call_id) == (
        "check_availability",
        {"date": "2026-11-24"},
        "toolu_01FAKE",
    )
    (tool,) = server.requests[0]["body"]["tools"]
    assert tool["name"] == "check_availability"
    assert tool["input_schema"]["required"] == ["date"]


async def test_overloaded_claude_falls_back_to_the_local_responder():
    async with FakeAnthropic() as server:
        server.plan(SONNET, overloaded())
        engine = _build(server)
        response = await engine.chat(chat_ctx=_chat("When are you open?")).collect()
        labels = provider_labels(llm=engine)["llm"]
        # The framework re-sends the request in the background to see whether Claude recovered.
        await _until(lambda: len(server.requests) == 2)
        await engine.aclose()

    first, probe = server.requests
    assert first["body"] == probe["body"]
    assert response.text == "We are open 8 to 6, Monday to Friday."
    assert labels == {"provider": "offline-responder", "offline": True, "chain": ["anthropic", "offline-responder"]}


async def test_overloaded_sonnet_falls_back_to_the_secondary_claude_model_first():
    async with FakeAnthropic() as server:
        server.plan(SONNET, overloaded())
        server.plan(HAIKU, text("Haiku here."))
        engine = _build(server, fallback_model=HAIKU)
        response = await engine.chat(chat_ctx=_chat("Hello")).collect()
        await engine.aclose()

    assert response.text == "Haiku here."
    models = [r["body"]["model"] for r in server.requests]
    # Sonnet first; Haiku once; beside it, maybe, the framework's recovery probe of Sonnet.
    assert (models[0], models.count(HAIKU), set(models)) == (SONNET, 1, {SONNET, HAIKU})
    assert engine.chain == ["anthropic", "anthropic", "offline-responder"]


async def test_three_overloads_open_the_breaker_for_new_calls():
    breaker = breaker_for("anthropic", SONNET)
    async with FakeAnthropic() as server:
        server.plan(SONNET, overloaded())
        # Call 1: its request and the framework's recovery probe both get 529 (2 failures).
        await _one_call(server)
        await _until(lambda: breaker.failures == 2)
        # Call 2: its request is the third failure (Claude's threshold) and opens the breaker; its probe
        # is then refused without a request.
        await _one_call(server)
        assert breaker.state == "open"
        assert len(server.requests_for(SONNET)) == 3
        # Call 3: Claude is skipped at once; the local responder answers.
        response = await _one_call(server)
        assert len(server.requests_for(SONNET)) == 3

    assert response.text == "Hello! How can I help you today?"


async def _one_call(server: FakeAnthropic) -> llm.CollectedResponse:
    engine = _build(server)
    response = await engine.chat(chat_ctx=_chat("Hello")).collect()
    await asyncio.sleep(0.05)  # let the framework's recovery probe run before the call ends
    await engine.aclose()
    return response


def test_without_a_key_the_local_responder_answers():
    engine = build_llm(LLM_CONFIG, secrets={}, knowledge=KNOWLEDGE, agent_profile=PROFILE)
    assert isinstance(engine, LocalResponder)
    assert provider_labels(llm=engine)["llm"] == {
        "provider": "offline-responder",
        "offline": True,
        "chain": ["offline-responder"],
    }
