"""An OpenAI-compatible endpoint (a local model server) through livekit-plugins-openai."""

import pytest
from livekit.agents import llm

from tests.voice.fakes.openai_compat import FakeOpenAICompatible
from voice.engines import build_llm, provider_labels
from voice.engines.breaker import reset_breakers

CONFIG = {"provider": "openai_compatible", "model": "llama-3.2-3b-instruct", "temperature": 0.7, "max_tokens": 300}
PROFILE = {"greeting_message": "Thanks for calling, how can I help?"}


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


def _chat(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="Be brief.")
    ctx.add_message(role="user", content=text)
    return ctx


async def test_local_model_answers_through_the_openai_plugin():
    async with FakeOpenAICompatible() as server:
        engine = build_llm(CONFIG, secrets={"openai_base_url": server.base_url}, agent_profile=PROFILE)
        response = await engine.chat(chat_ctx=_chat("Hi")).collect()
        labels = provider_labels(llm=engine)["llm"]
        await engine.aclose()

    assert response.text == "Hello from the local model."
    (request,) = server.requests
    assert (request["body"]["model"], request["body"]["stream"]) == ("llama-3.2-3b-instruct", True)
    assert request["body"]["max_completion_tokens"] == 300
    assert request["headers"]["authorization"] == "Bearer not-needed"  # local servers take any key
    assert labels == {
        "provider": "openai_compatible",
        "offline": False,
        "chain": ["openai_compatible", "offline-responder"],
    }


async def test_local_model_down_the_responder_answers():
    async with FakeOpenAICompatible(status=503) as server:
        engine = build_llm(CONFIG, secrets={"openai_base_url": server.base_url}, agent_profile=PROFILE)
        response = await engine.chat(chat_ctx=_chat("Hello")).collect()
        await engine.aclose()

    assert response.text == "Hello! How can I help you today?"
