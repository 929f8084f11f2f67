"""Context assembly (prompt, knowledge, history trimming and summary) and the per-turn metrics."""

from livekit.agents import llm
from prometheus_client import REGISTRY

from agents.knowledge.search import KnowledgeSnapshot, Passage, Source
from core import embeddings
from voice import metrics
from voice.conversation import ContextPolicy, build_instructions, estimate_tokens, prepare_context
from voice.session import VoiceAgent


def conversation(turns: int, *, words: int = 5) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are the receptionist.")
    for n in range(turns):
        ctx.add_message(role="user" if n % 2 == 0 else "assistant", content=f"turn {n} " + "word " * words)
    return ctx


def texts(ctx: llm.ChatContext) -> list[str]:
    return [(m.role, (m.text_content or "").split("\n")[0]) for m in ctx.messages()]


def snapshot() -> KnowledgeSnapshot:
    """The FAQ as the knowledge base holds it: three passages, embedded as passages."""
    texts = [
        "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM.",
        "Q: Do you take insurance? A: Yes, most major dental plans.",
        "Parking is free behind the building. Ask at the desk for a permit.",
    ]
    sections = ["Hours", "Insurance", ""]
    passages = tuple(
        Passage(id=str(n), source=Source(document_id="d1", title="Practice FAQ", section=section), position=n, text=t)
        for n, (t, section) in enumerate(zip(texts, sections, strict=True))
    )
    return KnowledgeSnapshot(revision="r1", passages=passages, matrix=embeddings.embedder().passages(texts))


async def test_the_agent_finds_passages_by_meaning_and_reports_their_sources():
    found: list[list[dict]] = []
    agent = VoiceAgent(instructions="", tools=[], policy=ContextPolicy(), knowledge=snapshot(), on_sources=found.append)

    hits = await agent._search("can I leave my car somewhere when I come in")  # no word of the passage
    assert hits[0].text.startswith("Parking is free")
    assert found[-1][0]["label"] == "Practice FAQ"
    hits = await agent._search("will my dental plan cover it")
    assert hits[0].source.label == "Practice FAQ › Insurance"
    assert found[-1][0]["label"] == "Practice FAQ › Insurance"


def test_instructions_carry_the_caller_and_the_transfer_targets():
    text = build_instructions(
        system_prompt="You are the receptionist.",
        caller={"caller_number": "+15557654321", "customer_name": "Ann", "empty": ""},
        transfer_targets=[{"name": "Front desk"}, {"name": "Billing"}],
    )
    assert text.startswith("You are the receptionist.")
    assert "- Caller's number: +15557654321\n- Caller's name: Ann" in text
    assert "Empty" not in text
    assert "call transfer_call (targets: Front desk, Billing)" in text


def test_short_history_is_kept_whole_with_knowledge_before_the_last_turn():
    ctx = conversation(3)
    ctx.add_message(role="user", content="When are you open?")
    knowledge = snapshot()
    hits = knowledge.search("When are you open?", embeddings.query("When are you open?"))
    shaped = prepare_context(ctx, policy=ContextPolicy(), hits=hits)

    roles = [m.role for m in shaped.messages()]
    assert roles == ["system", "user", "assistant", "user", "system", "user"]
    assert "[Practice FAQ › Hours] Q: When are you open? A: Monday to Friday" in shaped.messages()[-2].text_content
    assert len(ctx.items) == 5  # the session's own history is untouched


def test_older_turns_are_summarized_after_summarize_after_turns():
    shaped = prepare_context(conversation(12), policy=ContextPolicy(summarize_after_turns=8))

    messages = shaped.messages()
    assert messages[0].text_content == "You are the receptionist."
    summary = messages[1].text_content
    assert summary.startswith("Summary of the earlier part of this call:")
    assert "- Caller: turn 0 word" in summary and "- Agent: turn 7 word" in summary
    assert [m.text_content.split()[1] for m in messages[2:]] == ["8", "9", "10", "11"]  # the last 4 verbatim


def test_history_is_trimmed_to_the_token_budget_keeping_the_latest_turn():
    shaped = prepare_context(conversation(10, words=100), policy=ContextPolicy(max_history_tokens=300))

    kept = [m for m in shaped.messages() if m.role != "system"]
    assert [m.text_content.split()[1] for m in kept] == ["8", "9"]  # about 130 tokens each
    assert sum(estimate_tokens(m.text_content) for m in kept) <= 300


def test_a_tool_output_never_loses_its_call():
    ctx = conversation(1)
    # a large call and a small output: the budget cut falls between them
    ctx.insert(llm.FunctionCall(call_id="c1", name="check_availability", arguments='{"note": "' + "n" * 2000 + '"}'))
    ctx.insert(llm.FunctionCallOutput(call_id="c1", name="check_availability", output="x " * 200, is_error=False))
    ctx.add_message(role="assistant", content="I have nine.")
    ctx.add_message(role="user", content="Great.")
    shaped = prepare_context(ctx, policy=ContextPolicy(max_history_tokens=300))

    kept = [(i.type, getattr(i, "role", "")) for i in shaped.items if getattr(i, "role", "") != "system"]
    assert kept == [("message", "assistant"), ("message", "user")]


def test_turn_metrics_become_metadata_and_histograms():
    report = {
        "llm_node_ttft": 0.25,
        "tts_node_ttfb": 0.1,
        "e2e_latency": 0.9,
        "llm_metadata": {"model_name": "claude-x", "model_provider": "anthropic"},
        "tts_metadata": {"model_name": "unknown", "model_provider": "offline-piper"},
    }
    assert metrics.turn_metadata("assistant", report) == {
        "llm_ttft_ms": 250,
        "tts_ttfb_ms": 100,
        "e2e_ms": 900,
        "llm_provider": "anthropic",
        "llm_model": "claude-x",
        "tts_provider": "offline-piper",
    }
    before = REGISTRY.get_sample_value("e2e_latency_seconds_count", {"tenant": "t-metrics"}) or 0
    metrics.observe(tenant="t-metrics", role="assistant", report=report, voice="joe")
    metrics.observe(tenant="t-metrics", role="user", report={"transcription_delay": 0.3})
    assert REGISTRY.get_sample_value("e2e_latency_seconds_count", {"tenant": "t-metrics"}) == before + 1
    assert REGISTRY.get_sample_value("llm_latency_seconds_sum", {"tenant": "t-metrics", "model": "claude-x"}) == 0.25
    assert REGISTRY.get_sample_value("tts_latency_seconds_count", {"tenant": "t-metrics", "voice": "joe"}) == 1
    assert REGISTRY.get_sample_value("stt_latency_seconds_sum", {"tenant": "t-metrics"}) == 0.3
