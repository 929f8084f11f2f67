"""The offline responder's own sentences: questions for a missing detail, what the agent can do, small talk.

Everything here is derived from the agent's configuration (tool descriptions, FAQ questions, the business
name), so the replies read naturally whatever the trade: "I can book a new appointment or cancel an
existing appointment, and answer questions about opening hours and prices".
"""

import re

from voice.engines.responder.arguments import parameter_kind
from voice.engines.responder.text import human_list, humanize_name, words

FIRST_ASK = "Sure, I can help with that. "
KIND_QUESTIONS = {
    "date": "What day would you like?",
    "datetime": "What day and time would you like?",
    "time": "What time would suit you?",
    "name": "May I have your name, please?",
    "address": "What's the address?",
    "email": "What's your email address?",
    "phone": "What's the best number to reach you?",
}
# FAQ topics as a caller would name them, by a word of the question.
TOPICS = (
    ({"open", "hours", "close", "closing"}, "opening hours"),
    ({"where", "located", "location", "address", "find"}, "where we are"),
    ({"parking", "park"}, "parking"),
    ({"insurance", "insured"}, "insurance"),
    ({"much", "cost", "price", "prices", "charge", "fee"}, "prices"),
    ({"pay", "payment", "accept"}, "payment"),
    ({"deliver", "delivery"}, "delivery"),
    ({"emergency"}, "emergencies"),
    ({"cancellation", "cancel"}, "cancellations"),
    ({"areas", "area", "serve"}, "the areas we serve"),
    ({"estimates", "estimate", "quote"}, "estimates"),
    ({"patients"}, "new patients"),
)
MAX_TOPICS = 4
ACTION_PHRASES = {
    "cancel": "cancel bookings",
    "reschedule": "move appointments",
    "book": "make bookings",
    "order": "take orders",
    "change": "change orders",
}
REQUEST_WORDS = {
    "book", "schedule", "cancel", "order", "send", "reserve", "make", "get", "need", "want", "like",
    "available", "availability", "slots", "slot", "opening", "openings", "free", "fit",
}  # fmt: skip
CLAUSE_END_RE = re.compile(r"\s*(?:[.(;]| such as | for example)")
TRAILING_DETAIL_RE = re.compile(r"\s+(?:on|at|by|for|in|with)\s+(?:a|an|its|the|their)\s+[^,]*$")


def ask_for(tool: dict, parameter: str, *, first: bool = True) -> str:
    """One question for one missing detail of `tool`."""
    prop = ((tool.get("parameters") or {}).get("properties") or {}).get(parameter) or {}
    question = _question(parameter, prop)
    return f"{FIRST_ASK}{question}" if first else question


def _question(parameter: str, prop: dict) -> str:
    if prop.get("enum"):
        return f"Would you like {human_list([str(c) for c in prop['enum']], 'or')}?"
    kind = parameter_kind(parameter, prop)
    if kind in KIND_QUESTIONS:
        return KIND_QUESTIONS[kind]
    description = (prop.get("description") or "").strip().rstrip(".?")
    if m := re.match(r"(?i)^what to (.+)$", description):
        return f"What would you like to {m[1]}?"
    if description.lower().startswith(("what ", "which ", "where ", "when ", "how ")):
        return f"Could you tell me {description[0].lower()}{description[1:]}?"
    label = description.lower() if description and len(description) <= 40 else humanize_name(parameter)
    return f"What's the {label}?"


def asked_in(text: str, tools: list[dict]) -> list[tuple[dict, str]]:
    """Every (tool, parameter) whose question ends our turn `text` (several tools may ask alike)."""
    said = text.strip()
    return [
        (tool, parameter)
        for tool in tools
        for parameter in (tool.get("parameters") or {}).get("properties") or {}
        if said.endswith(ask_for(tool, parameter, first=False))
    ]


REQUEST_LEAD_RE = re.compile(
    r"^(?:(?:hi|hello|yes|yeah|so|um|uh|well|okay|ok|and|also|actually)\b[\s,]*)*"
    r"(?:i'd like|i would like|i want|i wanna|i need|i'll|i'd rather|i would rather|can i|could i|may i|"
    r"can you|could you|would you|please|book|schedule|cancel|order|send|get me|let me|put me|connect me|"
    r"transfer me|i'm calling to|i'm looking to|we need|i have to|is it possible to|would it be possible|"
    r"is there (?:any )?way)\b",
    re.IGNORECASE,
)
QUESTION_LEAD_RE = re.compile(
    r"^(?:(?:hi|hello|yes|yeah|so|um|uh|well|okay|ok|and|also|actually)\b[\s,]*)*"
    r"(?:what|when|where|how|why|which|who|is|are|does|do you (?:take|accept|offer|charge|open|close)|"
    r"do you guys)\b",
    re.IGNORECASE,
)
AVAILABILITY_WORDS = {"available", "availability", "slots", "slot", "opening", "openings", "free", "fit", "anything"}


REQUEST_ANYWHERE_RE = re.compile(
    r"(?i)\b(?:can|could|would) (?:someone|somebody|you send|you come|a plumber|the plumber)|\bsend (?:someone|"
    r"somebody|a|the)\b|\bcome (?:out|by|over|round)\b|\btake a look\b|\bi (?:need|want|'d like|would like) "
    r"(?:to|a|an|some|someone|somebody)\b"
)


def is_request(text: str) -> bool:
    """Does the caller ask for something to be done (rather than about the business)?"""
    if REQUEST_LEAD_RE.match(text.strip()) or REQUEST_ANYWHERE_RE.search(text):
        return True
    return not QUESTION_LEAD_RE.match(text.strip()) and bool(set(words(text)) & AVAILABILITY_WORDS)


def asks(text: str) -> bool:
    """Is this a question of any kind (as written by speech recognition, or by its first words)?"""
    said = text.strip()
    return (
        said.endswith("?")
        or bool(QUESTION_LEAD_RE.match(said))
        or bool(re.match(r"(?i)(?:is|are|can|could|do|does)\b", said))
    )


def is_question(text: str) -> bool:
    """A question about the business ("what happens if I cancel late?"), not a request."""
    return bool(QUESTION_LEAD_RE.match(text.strip())) and not REQUEST_LEAD_RE.match(text.strip())


CAPABILITY_TERMS = {"help", "ask", "offer", "service", "able", "kind", "thing", "do", "assist", "question"}


def asks_what_we_do(text: str) -> bool:
    """'What can you help me with?' has no subject of its own; 'Can you fix my car?' has one."""
    from voice.engines.responder.text import terms

    return set(terms(text)) <= {t for w in CAPABILITY_TERMS for t in terms(w)} | CAPABILITY_TERMS


def unserved_action(text: str, tools: list[dict]) -> str | None:
    """An action the caller asks for (cancel, reschedule, book, order, change) that no tool does."""
    from voice.engines.responder.intents import ACTION_WORDS, tool_serves

    said = set(words(text))
    for action in ("reschedule", "cancel", "change", "book", "order"):
        if said & ACTION_WORDS[action] and not any(tool_serves(t, action) for t in tools):
            return action
    return None


def action_of(tool_name: str, tools: list[dict] | None = None) -> str:
    """'book_appointment' -> 'book the appointment'-like words for "I couldn't … just now"."""
    name = humanize_name(tool_name) or "do that"
    verb, _, rest = name.partition(" ")
    return f"{verb} the {rest}" if rest and not rest.startswith(("the ", "a ", "an ")) else name


def tool_phrase(tool: dict) -> str:
    """What the tool does, as a verb phrase: 'book a new appointment'."""
    description = (tool.get("description") or "").strip()
    clause = CLAUSE_END_RE.split(description, maxsplit=1)[0].strip()
    clause = TRAILING_DETAIL_RE.sub("", clause)
    clause = re.sub(r"\s+for (?:the|a) (?:caller|user|customer)\b", "", clause)
    if not clause:
        return humanize_name(tool["name"])
    return clause[0].lower() + clause[1:]


def topics(questions: list[str]) -> list[str]:
    found: list[str] = []
    for question in questions:
        said = set(words(question))
        for keys, topic in TOPICS:
            if said & keys and topic not in found:
                found.append(topic)
                break
    return found[:MAX_TOPICS]


def capabilities(agent) -> str:
    """One sentence on what this agent can do, from its tools and the topics of its FAQ."""
    can = [tool_phrase(t) for t in agent.business_tools]
    about = topics([e.question for e in agent.index.faq_entries])
    parts = []
    if can:
        parts.append(human_list(can, "or"))
    if about:
        parts.append(f"answer questions about {human_list(about)}")
    elif agent.index.entries:
        parts.append("answer questions about the business")
    offer = " Or I can connect you with a person." if "transfer_call" in agent.tool_names else ""
    if not parts:
        return f"I can take a message or answer general questions.{offer}".strip()
    return f"I can {', and '.join(parts)}.{offer}"


def fallback(agent) -> str:
    return f"I'm sorry, I don't know about that. {capabilities(agent)}"


def unsupported(action: str, agent) -> str:
    return f"I'm sorry, I can't {ACTION_PHRASES.get(action, action)} by phone. But {capabilities(agent)[0].lower()}{capabilities(agent)[1:]}"


def small_talk(kind: str, agent) -> str:
    business = agent.profile.get("business_name") or agent.profile.get("name") or "this business"
    if kind == "robot":
        return f"I'm the virtual assistant for {business}, an automated system. {capabilities(agent)}"
    if kind == "capabilities":
        return capabilities(agent)
    if kind == "thanks":
        return "You're welcome! Is there anything else I can help you with?"
    return "Hello! How can I help you today?"
