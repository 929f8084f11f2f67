"""Fill a tool's JSON-Schema parameters from a caller's words (offline responder)."""

import re
from datetime import date

from voice.engines.responder import slots

FREE_TEXT_PARAMS = {
    "query",
    "question",
    "reason",
    "notes",
    "note",
    "message",
    "details",
    "topic",
    "request",
    "description",
    "summary",
    "issue",
    "context",
}
TARGET_PARAMS = {"target", "destination", "department", "to", "transfer_to", "target_name", "extension"}
ADDRESS_PARAMS = {"address", "street", "location", "delivery_address", "service_address"}
NAME_RE = re.compile(
    r"\b(?:my name is|my name's|name is|name's|this is|it's under|it is under|under the name(?: of)?|for)\s+"
    r"([a-z][a-z'-]+(?: [a-z][a-z'-]+)?)\b(?! at\b)",
    re.IGNORECASE,
)
ADDRESS_RE = re.compile(
    r"\b\d{1,6}\s+(?:[a-z]+\s+){1,3}?(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|"
    r"place|pl|terrace|close|crescent)\b\.?",
    re.IGNORECASE,
)
TWO_CAPITALS_RE = re.compile(r"(?<![.!?]\s)\b([A-Z][a-z'-]+ [A-Z][a-z'-]+)\b")
CAPITALISED_NAME_RE = re.compile(r"\b(?:[Ii]t's|[Ii]t is|I'm|I am)\s+([A-Z][a-z'-]+(?: [A-Z][a-z'-]+)?)\b")
# Words that are not a name even where a name could be ("for Friday", "this is urgent").
NOT_NAMES = frozenset(
    [
        "a",
        "an",
        "the",
        "me",
        "my",
        "delivery",
        "pickup",
        "today",
        "tomorrow",
        "tonight",
        "next",
        "this",
        "that",
        "urgent",
        "it",
        "about",
        "cleaning",
        "checkup",
        "check",
        "filling",
        "whitening",
        "two",
        "one",
        "four",
        *slots.WEEKDAYS,
        *slots.MONTHS,
    ]
)


def fill_arguments(
    schema: dict, text: str, *, today: date, targets: list[dict] | None = None
) -> tuple[dict, list[str]]:
    """(arguments found, required parameter names still missing) for one tool."""
    properties = schema.get("properties") or {}
    args: dict = {}
    for name, prop in properties.items():
        value = fill_parameter(name, prop or {}, text, today=today, targets=targets or [])
        if value is not None:
            args[name] = value
    missing = [name for name in schema.get("required") or [] if name not in args]
    return args, missing


def fill_parameter(name: str, prop: dict, text: str, *, today: date, targets: list[dict]) -> object | None:
    """One parameter's value, by what the schema says it is, or None when the words lack it."""
    kind = parameter_kind(name, prop)
    if kind == "target":
        return match_target(text, prop.get("enum") or [t.get("name", "") for t in targets])
    if "enum" in prop:
        return slots.extract_enum(text, prop["enum"])
    extractor = EXTRACTORS.get(kind)
    return extractor(text, today) if extractor else None


def parameter_kind(name: str, prop: dict) -> str:
    """What a parameter holds, read from its format, type and name."""
    lowered, fmt, typ = name.lower(), prop.get("format", ""), prop.get("type", "")
    if fmt == "date-time" or lowered in {"datetime", "date_time", "start", "start_time_iso"}:
        return "datetime"
    if fmt == "date" or "date" in lowered or lowered in {"day", "when"}:
        return "date"
    if fmt == "time" or "time" in lowered or lowered == "hour":
        return "time"
    if fmt == "email" or "email" in lowered:
        return "email"
    if "phone" in lowered or lowered in {"number_to_call", "callback_number"}:
        return "phone"
    if typ in ("integer", "number"):
        return typ
    if lowered in TARGET_PARAMS:
        return "target"
    if lowered in ADDRESS_PARAMS or "address" in lowered:
        return "address"
    if lowered in FREE_TEXT_PARAMS:
        return "text"
    if "name" in lowered:
        return "name"
    return "unknown"


def _datetime(text: str, today: date) -> str | None:
    day, time = slots.extract_date(text, today), slots.extract_time(text)
    return f"{day}T{time}:00" if day and time else None


def _integer(text: str, today: date) -> int | None:
    number = slots.extract_number(text)
    return int(number) if number is not None else None


def _regex(pattern: re.Pattern):
    return lambda text, today: m[0].strip() if (m := pattern.search(text)) else None


EXTRACTORS = {
    "datetime": _datetime,
    "date": slots.extract_date,
    "time": lambda text, today: slots.extract_time(text),
    "integer": _integer,
    "number": lambda text, today: slots.extract_number(text),
    "email": _regex(slots.EMAIL_RE),
    "phone": _regex(slots.PHONE_RE),
    "text": lambda text, today: text.strip() or None,
    "name": lambda text, today: find_name(text),
    "address": lambda text, today: m[0].rstrip(".").strip() if (m := ADDRESS_RE.search(text)) else None,
}


def find_name(text: str) -> str | None:
    """A person's name said as 'my name is …', 'it's under …', 'for …' (as heard: any case)."""
    for m in NAME_RE.finditer(text):
        name = [w for w in m[1].split() if w.lower() not in NOT_NAMES]
        if name and name == m[1].split():
            return " ".join(w[:1].upper() + w[1:] for w in name)
    found = CAPITALISED_NAME_RE.search(text)
    if found and not any(w.lower() in NOT_NAMES for w in found[1].split()):
        return found[1]
    # Speech recognition capitalises names: "cancel for my wife, Susan Park".
    for m in TWO_CAPITALS_RE.finditer(text):
        if m.start() > 0 and not any(w.lower() in NOT_NAMES for w in m[1].split()):
            return m[1]
    return None


ANSWER_LEAD_RE = re.compile(
    r"^(?:(?:yes|yeah|sure|okay|ok|um|uh|so|well|it's|it is|that's|that is|this is|my name is|my name's|"
    r"the name is|name's|i'm|i am|under|the address is|it's at|we're at|i'm at|at)\b[\s,]*)+",
    re.IGNORECASE,
)


def direct_answer(kind: str, text: str) -> str | None:
    """The caller's whole reply as the value asked for, when it can be one (a name, an address, free text)."""
    said = ANSWER_LEAD_RE.sub("", text.strip()).strip(" .!?,")
    if not said:
        return None
    if kind == "name":
        parts = said.split()
        plausible = 1 <= len(parts) <= 4 and all(re.fullmatch(r"[A-Za-z][A-Za-z'-]*", p) for p in parts)
        if plausible and not any(p.lower() in NOT_NAMES for p in parts):
            return " ".join(p[:1].upper() + p[1:] for p in parts)
        return None
    if kind in ("address", "text", "unknown"):
        return said if len(said.split()) <= 30 else None
    return None


def match_target(text: str, names: list[str]) -> str | None:
    """The transfer target the caller named ('front desk', 'billing'), else the first one."""
    names = [n for n in names if n]
    return (slots.extract_enum(text, names) or names[0]) if names else None
