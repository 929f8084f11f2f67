"""What a caller asks for in their own words, for a tool's free-text parameter ("items", "issue").

"Can I get two margheritas for pickup?" orders "two margheritas"; "My toilet is clogged, can someone come
Friday?" is about "my toilet is clogged". What is left of the caller's words after the request phrasing,
the day and time, and the words of the tool's own description is the thing asked for; nothing left means
the caller has not said it yet.
"""

import re

from voice.engines.responder import slots
from voice.engines.responder.text import STOPWORDS, humanize_name, words

LEAD_RE = re.compile(
    r"^(?:(?:hi|hello|yes|yeah|so|um|uh|well|please|okay|ok)\b[\s,]*)*"
    r"(?:(?:i'd|i would|i'll|i will|we'd|we would) (?:like|love|want)(?: to)?|i want(?: to)?|i need(?: to)?|"
    r"order|get|have|book|place|can i (?:get|have|order)|could i (?:get|have)|can you (?:send|get|bring)|"
    r"give me|i'll (?:have|take)|let me (?:get|have)|we need)\b\s*"
    r"(?:(?:order|get|have|book|place)\b\s*)?",
    re.IGNORECASE,
)
TAIL_RE = re.compile(
    r"\s*\b(?:for|to|as) (?:a )?(?:delivery|pickup|pick up|pick-up|collection|takeout|take out)\b.*$"
    r"|\s*\b(?:please|thanks|thank you)\b.*$",
    re.IGNORECASE,
)
CLAUSE_RE = re.compile(r"[,.;!?]|\band\b|\bbut\b")
GENERIC = frozenset(
    ["someone", "somebody", "come", "out", "today", "tomorrow", "morning", "afternoon", "evening", "next", "week",
     "visit", "time", "day", "date", "soon", "possible", "asap", "now", "place", "make", "book", "schedule",
     "order", "repair", "fix", "help", "look", "thing", "something", "plumber", "pm", "am", "o'clock",
     *slots.WEEKDAYS]
)  # fmt: skip


def free_text_value(text: str, tool: dict) -> str | None:
    """The part of `text` that says what the caller wants, or None when it says only that they want it."""
    own = set(words(f"{humanize_name(tool['name'])} {tool.get('description') or ''}"))
    kept = []
    for clause in CLAUSE_RE.split(text):
        clause = TAIL_RE.sub("", LEAD_RE.sub("", clause.strip())).strip()
        content = [w for w in words(clause) if w not in STOPWORDS and w not in GENERIC and w not in own]
        content = [w for w in content if not w.isdigit() and w not in slots.MONTHS]
        if content:
            kept.append(clause)
    return ", ".join(kept) if kept else None
