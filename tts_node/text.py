"""Text preprocessing before synthesis: numbers spelled out, paralinguistic tags, sentences.

Sentences are the unit of streaming for every engine (the first one is spoken while the rest wait),
so they are cut here. Tags such as `[laugh]` pass through to an engine that renders them (Chatterbox
Turbo) and are removed for the others, which would otherwise read them out. Sentence splitting is a
small regex on purpose: the input is an LLM's reply in one language, cut into sentences already by
the agent, and a full segmenter (spaCy, pysbd) would add a model load for no gain here.
"""

import re

from num2words import num2words

# The paralinguistic tags Chatterbox Turbo was trained with.
KNOWN_TAGS = frozenset({"laugh", "chuckle", "cough", "sigh", "gasp", "groan", "sniff", "shush", "clear throat"})
TAG_RE = re.compile(r"\[([^\[\]]{1,40})\]")
SENTENCE_END_RE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
CURRENCY_RE = re.compile(r"\$(\d[\d,]*)(?:\.(\d{2}))?\b")
PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s?%")
ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")
NUMBER_RE = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,!?;:])")
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MIN_SENTENCE_CHARS = 12  # shorter pieces ride with the next sentence: too short to be worth a model pass


def render_tags(text: str, *, supports_tags: bool) -> str:
    """Keep the known tags (normalised) for an engine that renders them; drop every tag otherwise."""

    def replace(match: re.Match) -> str:
        tag = " ".join(match.group(1).lower().split())
        return f" [{tag}] " if supports_tags and tag in KNOWN_TAGS else " "

    return SPACE_BEFORE_PUNCT_RE.sub(r"\1", " ".join(TAG_RE.sub(replace, text).split()))


def _words(number: str, **kwargs) -> str:
    return num2words(number, **kwargs).replace("-", " ")


def _currency(match: re.Match) -> str:
    dollars = int(match.group(1).replace(",", ""))
    spoken = f"{_words(dollars)} dollar{'s' if dollars != 1 else ''}"
    cents = int(match.group(2) or 0)
    return f"{spoken} and {_words(cents)} cent{'s' if cents != 1 else ''}" if cents else spoken


def _time(match: re.Match) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 24 or minutes > 59:
        return match.group(0)
    if minutes == 0:
        return f"{_words(hours)} o'clock"
    return f"{_words(hours)} {'oh ' if minutes < 10 else ''}{_words(minutes)}"


def _number(match: re.Match) -> str:
    raw = match.group(0)
    plain = raw.replace(",", "")
    if "," not in raw and "." not in raw and len(plain) >= 5:
        return " ".join(DIGIT_WORDS[int(d)] for d in plain)  # phone, account and order numbers
    return _words(float(plain) if "." in plain else int(plain))


def expand_numbers(text: str) -> str:
    """Spell out money, percentages, ordinals, clock times and numbers (long digit runs digit by digit)."""
    text = CURRENCY_RE.sub(_currency, text)
    text = PERCENT_RE.sub(
        lambda m: f"{_words(float(m.group(1)) if '.' in m.group(1) else int(m.group(1)))} percent", text
    )
    text = ORDINAL_RE.sub(lambda m: _words(int(m.group(1)), to="ordinal"), text)
    text = TIME_RE.sub(_time, text)
    return NUMBER_RE.sub(_number, text)


def split_sentences(text: str) -> list[str]:
    """Sentences in order; a very short one is joined to the next."""
    pieces = [p.strip() for p in SENTENCE_END_RE.split(text) if p.strip()]
    sentences: list[str] = []
    carry = ""
    for piece in pieces:
        carry = f"{carry} {piece}".strip()
        if len(carry) >= MIN_SENTENCE_CHARS:
            sentences.append(carry)
            carry = ""
    if carry:
        if sentences:
            sentences[-1] = f"{sentences[-1]} {carry}"
        else:
            sentences.append(carry)
    return sentences


def prepare(text: str, *, supports_tags: bool) -> list[str]:
    """The sentences an engine should speak, in order (empty when nothing speakable is left)."""
    spoken = render_tags(expand_numbers(text), supports_tags=supports_tags)
    return split_sentences(spoken) if spoken else []
