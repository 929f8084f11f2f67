"""The offline local responder: answers from the agent's configuration, deterministically."""

import json
from datetime import date

import pytest
from livekit.agents import Agent, AgentSession, llm

from voice.engines.responder.knowledge import KnowledgeIndex, parse_document
from voice.engines.responder.llm import LocalResponder
from voice.engines.responder.slots import extract_date, extract_number, extract_time

TODAY = date(2026, 11, 19)  # a Thursday
KNOWLEDGE = [
    {
        "title": "Practice FAQ",
        "content": (
            "Q: What are your opening hours?\n"
            "A: We are open Monday to Friday, 8 AM to 6 PM, and Saturday 9 AM to 1 PM.\n"
            "\n"
            "Q: Where are you located? A: 12 Harbour Street, next to the pharmacy.\n"
            "\n"
            "We offer cleanings, fillings and whitening. Parking is free behind the building."
        ),
    }
]
PROFILE = {
    "name": "Scheduler",
    "business_name": "Acme Dental",
    "greeting_message": "Thank you for calling Acme Dental. How can I help?",
    "transfer_targets": [
        {"name": "Front desk", "destination": "ext:1001"},
        {"name": "Billing", "destination": "ext:1002"},
    ],
}


def _tool(name: str, description: str, properties: dict, required: list[str]):
    schema = {"type": "object", "properties": properties, "required": required}

    async def run(raw_arguments: dict) -> str:
        return json.dumps({"date": raw_arguments.get("date"), "available_slots": ["09:00", "10:30", "14:00"]})

    return llm.function_tool(run, raw_schema={"name": name, "description": description, "parameters": schema})


CHECK = _tool(
    "check_availability",
    "List open appointment slots on a given date.",
    {"date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}},
    ["date"],
)
BOOK = _tool(
    "book_appointment",
    "Book an appointment for the caller.",
    {"date": {"type": "string"}, "time": {"type": "string"}, "party_size": {"type": "integer"}},
    ["date", "time"],
)
TRANSFER = _tool(
    "transfer_call",
    "Transfer the caller to a person.",
    {"target": {"type": "string", "enum": ["Front desk", "Billing"]}, "context": {"type": "string"}},
    ["target"],
)
END = _tool("end_call", "End the call.", {"reason": {"type": "string"}}, [])
TOOLS = [CHECK, BOOK, TRANSFER, END]


def _responder() -> LocalResponder:
    return LocalResponder(knowledge=KNOWLEDGE, agent_profile=PROFILE, today=lambda: TODAY)


def _ctx(*turns: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content="You are the receptionist.")
    for i, text in enumerate(turns):
        ctx.add_message(role="user" if i % 2 == 0 else "assistant", content=text)
    return ctx


async def _reply(*turns: str, tools=TOOLS) -> llm.CollectedResponse:
    return await _responder().chat(chat_ctx=_ctx(*turns), tools=tools).collect()


async def test_greets_with_the_agent_greeting_before_the_caller_speaks():
    assert (await _reply()).text == "Thank you for calling Acme Dental. How can I help?"
    assert (await _reply("Hi there")).text == "Hello! How can I help you today?"


async def test_answers_a_faq_from_the_knowledge_document():
    response = await _reply("When are you open?")
    assert response.text == "We are open Monday to Friday, 8 AM to 6 PM, and Saturday 9 AM to 1 PM."
    assert response.tool_calls == []
    assert (await _reply("Where are you?")).text == "12 Harbour Street, next to the pharmacy."
    assert (await _reply("Do you have parking?")).text == "Parking is free behind the building."


async def test_free_on_tuesday_calls_check_availability_with_the_date():
    response = await _reply("Is there anything free on Tuesday?")
    (call,) = response.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("check_availability", {"date": "2026-11-24"})
    assert response.text == ""


async def test_booking_collects_missing_details_over_two_turns():
    first = await _reply("I'd like to book an appointment")
    assert first.text == "Sure, I can help with that. What day would you like?"
    second = await _reply("I'd like to book an appointment", first.text, "Tuesday at 3pm for two people")
    (call,) = second.tool_calls
    assert json.loads(call.arguments) == {"date": "2026-11-24", "time": "15:00", "party_size": 2}


async def test_asking_for_a_person_calls_transfer_call():
    (call,) = (await _reply("let me talk to a person")).tool_calls
    assert call.name == "transfer_call"
    assert json.loads(call.arguments)["target"] == "Front desk"
    (call,) = (await _reply("Can you put me through to billing, I want to speak to someone")).tool_calls
    assert json.loads(call.arguments)["target"] == "Billing"


async def test_goodbye_calls_end_call_and_without_tools_says_goodbye():
    (call,) = (await _reply("No that's all, bye")).tool_calls
    assert call.name == "end_call"
    assert (await _reply("ok bye", tools=[])).text == "Thank you for calling. Goodbye!"


async def test_unknown_question_gets_a_fallback_naming_what_it_can_do_in_words_a_caller_knows():
    response = await _reply("What's the weather like tomorrow?")
    assert response.text == (
        "I'm sorry, I don't know about that. I can list open appointment slots or book an appointment, and "
        "answer questions about opening hours and where we are. Or I can connect you with a person."
    )


async def test_tool_result_is_put_into_words_on_the_next_turn():
    ctx = _ctx("Is there anything free on Tuesday?")
    ctx.insert(llm.FunctionCall(call_id="c1", name="check_availability", arguments='{"date": "2026-11-24"}'))
    output = {"date": "2026-11-24", "available_slots": ["09:00", "10:30", "14:00"]}
    ctx.insert(
        llm.FunctionCallOutput(call_id="c1", name="check_availability", output=json.dumps(output), is_error=False)
    )
    response = await _responder().chat(chat_ctx=ctx, tools=TOOLS).collect()
    assert response.text == "Here's what I found: date Tuesday, November 24; available slots: 9 AM, 10:30 AM and 2 PM."


async def test_streams_word_by_word_and_is_deterministic():
    runs = []
    for _ in range(2):
        chunks = [c async for c in _responder().chat(chat_ctx=_ctx("When are you open?"), tools=TOOLS)]
        runs.append([(c.id, c.delta.content if c.delta else None, c.usage) for c in chunks])
    assert runs[0] == runs[1]
    words = [content for _, content, _ in runs[0] if content]
    assert words[:3] == ["We", " are", " open"]
    tool_runs = [(await _reply("Is there anything free on Tuesday?")).tool_calls[0] for _ in range(2)]
    assert tool_runs[0] == tool_runs[1]  # the same call id too


async def test_the_framework_runs_the_tool_and_the_responder_phrases_its_result():
    # Through livekit-agents' own AgentSession (text mode): the responder's FunctionToolCall is
    # executed by the framework, and the responder answers from the tool's output.
    async with AgentSession(llm=_responder()) as session:
        await session.start(Agent(instructions="You are the receptionist.", tools=[CHECK]))
        result = await session.run(user_input="Is there anything free on Tuesday?")

    result.expect.next_event().is_function_call(name="check_availability", arguments={"date": "2026-11-24"})
    result.expect.next_event().is_function_call_output()
    result.expect.next_event().is_message(role="assistant")
    message = result.expect[-1].event().item
    assert "9 AM, 10:30 AM and 2 PM" in message.text_content


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("tomorrow", "2026-11-20"),
        ("on Tuesday", "2026-11-24"),
        ("this Thursday", "2026-11-19"),
        ("next Thursday", "2026-11-26"),
        ("2026-12-01", "2026-12-01"),
        ("November 24th", "2026-11-24"),
        ("the 3rd of January", "2027-01-03"),
        ("12/24", "2026-12-24"),
        ("whenever", None),
    ],
)
def test_dates_resolve_forward_from_today(said, expected):
    assert extract_date(said, TODAY) == expected


def test_times_and_numbers():
    assert [extract_time(t) for t in ("3pm", "at 10:30 am", "15:45", "noon", "at 3", "soon")] == [
        "15:00",
        "10:30",
        "15:45",
        "12:00",
        "15:00",
        None,
    ]
    assert [extract_number(t) for t in ("for 4 people", "a table for two", "on 2026-11-24", "none")] == [
        4,
        2,
        None,
        None,
    ]


def test_faq_parsing_and_threshold():
    content = "Q: Do you take walk-ins?\nA: Yes, before noon.\nIt is quieter then.\n\nPlain paragraph here."
    entries = parse_document("FAQ", content)
    assert [(e.question, e.answer) for e in entries] == [
        ("Do you take walk-ins?", "Yes, before noon. It is quieter then."),  # an answer runs to the blank line
        ("FAQ", "Plain paragraph here."),
    ]
    index = KnowledgeIndex(KNOWLEDGE)
    assert index.search("Tell me about quantum physics") is None


def test_the_agents_examples_are_embedded_before_the_callers_first_turn():
    from core import embeddings
    from voice.engines.responder.intents import VectorCache, example_texts

    cache = VectorCache(lambda texts: embeddings.embedder().queries(texts))
    profile = {**PROFILE, "tools": [{"name": "check_availability", "description": "List open slots on a date."}]}
    responder = LocalResponder(knowledge=KNOWLEDGE, agent_profile=profile, today=lambda: TODAY, vectors=cache)
    responder.prewarming.join(60)

    queries, _ = example_texts(KnowledgeIndex(KNOWLEDGE).entries, profile["tools"])
    assert "List open slots on a date." in queries and "What are your opening hours?" in queries
    assert cache.missing(queries) == []
