"""Pull tool arguments (dates, times, numbers, enum choices) out of what a caller said.

The offline responder uses this to fill a tool's JSON-Schema parameters deterministically: the
same words on the same day give the same arguments.
"""

import re
from datetime import date, timedelta
from itertools import pairwise
from typing import TypeVar

from voice.engines.responder.text import words

Choice = TypeVar("Choice")

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
NUMBER_WORDS |= {"a couple": 2, "couple": 2, "dozen": 12}
TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER_WORDS |= TENS | {f"{t} {u}": v + NUMBER_WORDS[u] for t, v in TENS.items() for u in list(NUMBER_WORDS)[1:10]}
NUMBER_WORDS |= {f"twenty {u}": 20 + NUMBER_WORDS[u] for u in list(NUMBER_WORDS)[1:10]}

ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
SLASH_DATE_RE = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
MONTH_DAY_RE = re.compile(rf"\b({MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b")
DAY_MONTH_RE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTH_NAMES})\b")
ORDINAL_DAY_RE = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b")
TIME_RE = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?=\W|$)")
CLOCK_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
AT_HOUR_RE = re.compile(r"\bat\s+(\d{1,2})\b(?!\s*(?:/|:|-|\d|people|guests|persons))")
DIGITS_RE = re.compile(r"\b\d+(?:\.\d+)?\b")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PHONE_RE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def extract_date(text: str, today: date) -> str | None:
    """The first date mentioned, as ISO 'YYYY-MM-DD', resolved forward from `today`."""
    lowered = text.lower()
    found = _explicit_date(lowered, today)
    if found:
        return found.isoformat()
    relative = _relative_date(lowered, today)
    return relative.isoformat() if relative else None


def _explicit_date(text: str, today: date) -> date | None:
    if m := ISO_DATE_RE.search(text):
        return _safe_date(int(m[1]), int(m[2]), int(m[3]))
    if m := MONTH_DAY_RE.search(text):
        return _next_month_day(MONTHS[m[1]], int(m[2]), today)
    if m := DAY_MONTH_RE.search(text):
        return _next_month_day(MONTHS[m[2]], int(m[1]), today)
    if m := ORDINAL_DAY_RE.search(text):  # "the 9th": this month's, or next month's once it has passed
        return _next_day_of_month(int(m[1]), today)
    if m := SLASH_DATE_RE.search(text):  # US order: month/day
        if m[3]:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            return _safe_date(year, int(m[1]), int(m[2]))
        return _next_month_day(int(m[1]), int(m[2]), today)
    return None


def _relative_date(text: str, today: date) -> date | None:
    if "day after tomorrow" in text:
        return today + timedelta(days=2)
    tokens = [t[:-2] if t.endswith("'s") else t for t in words(text)]  # "tomorrow's appointment"
    if "tomorrow" in tokens:
        return today + timedelta(days=1)
    if "today" in tokens or "tonight" in tokens:
        return today
    for i, token in enumerate(tokens):
        day = token[:-1] if token.endswith("s") and token[:-1] in WEEKDAYS else token
        if day in WEEKDAYS:
            ahead = (WEEKDAYS.index(day) - today.weekday()) % 7
            if ahead == 0 and (tokens[i - 1] if i else "") != "this":
                ahead = 7  # 'on Tuesday' said on a Tuesday means next week's
            return today + timedelta(days=ahead)
    return None


def _next_day_of_month(day: int, today: date) -> date | None:
    candidate = _safe_date(today.year, today.month, day)
    if candidate is None or candidate < today:
        month, year = (today.month % 12) + 1, today.year + (today.month == 12)
        candidate = _safe_date(year, month, day)
    return candidate


def _next_month_day(month: int, day: int, today: date) -> date | None:
    candidate = _safe_date(today.year, month, day)
    if candidate and candidate < today:
        candidate = _safe_date(today.year + 1, month, day)
    return candidate


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def extract_time(text: str) -> str | None:
    """The first clock time mentioned, as 'HH:MM' (24 h)."""
    lowered = text.lower()
    if m := TIME_RE.search(lowered):
        hour, minute = int(m[1]) % 12, int(m[2] or 0)
        hour += 12 if m[3].startswith("p") else 0
        return f"{hour:02d}:{minute:02d}"
    if m := CLOCK_RE.search(lowered):
        hour = int(m[1])
        return f"{hour + 12 if 1 <= hour <= 7 else hour:02d}:{m[2]}"  # '3:15' on a business line is 15:15
    if m := WORD_TIME_RE.search(lowered):
        return _word_time(m)
    if re.search(r"\b(?:noon|midday)\b", lowered):
        return "12:00"
    if m := AT_HOUR_RE.search(lowered):
        hour = int(m[1])
        # Business hours: 'at 3' means 15:00, 'at 9' means 09:00.
        return f"{hour + 12 if 1 <= hour <= 7 else hour:02d}:00" if hour <= 12 else None
    return None


HOUR_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
WORD_TIME_RE = re.compile(
    rf"\b(?:(half past|quarter past|quarter to) ({HOUR_WORDS}|\d{{1,2}})"
    rf"|({HOUR_WORDS}|\d{{1,2}}) (thirty|fifteen|forty[- ]five|o'clock|in the (?:morning|afternoon|evening)))\b"
)
MINUTES = {"thirty": 30, "fifteen": 15, "forty five": 45, "forty-five": 45}


def _word_time(m: re.Match) -> str:
    """'half past ten', 'two thirty', '8 in the morning', '11 o'clock' as HH:MM (business hours for bare hours)."""
    hour_word = m[2] or m[3]
    hour = int(hour_word) if hour_word.isdigit() else NUMBER_WORDS[hour_word]
    minute = {"half past": 30, "quarter past": 15, "quarter to": -15}[m[1]] if m[1] else MINUTES.get(m[4], 0)
    if minute < 0:
        hour, minute = hour - 1, 45
    if m[4] and ("afternoon" in m[4] or "evening" in m[4]):
        hour = hour % 12 + 12
    elif not (m[4] and "morning" in m[4]) and 1 <= hour <= 7:
        hour += 12  # "at two thirty" in business hours is the afternoon
    return f"{hour % 24:02d}:{minute:02d}"


def extract_number(text: str) -> int | float | None:
    """The first number that is not part of a date or a time."""
    lowered = text.lower()
    for pattern in (ISO_DATE_RE, SLASH_DATE_RE, MONTH_DAY_RE, DAY_MONTH_RE, TIME_RE, CLOCK_RE, AT_HOUR_RE):
        lowered = pattern.sub(" ", lowered)
    if m := DIGITS_RE.search(lowered):
        value = float(m[0])
        return int(value) if value.is_integer() else value
    for phrase, value in sorted(NUMBER_WORDS.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{phrase}\b", lowered):
            return value
    return None


# Ways callers name a few choices that order and booking tools commonly offer.
ENUM_SYNONYMS = {
    "pickup": ("pick up", "pick it up", "pick them up", "collect", "collection", "carry out", "carryout", "take out",
               "takeout", "takeaway", "to go"),
    "delivery": ("deliver", "delivered", "bring it", "drop it off"),
    "checkup": ("check up", "exam", "examination"),
}  # fmt: skip


def extract_enum(text: str, choices: list[Choice]) -> Choice | None:
    """The enum value the caller names: its words ('front desk' before 'desk'), its spelling without
    spaces or hyphens ('check up' is 'check-up'), or a common way of saying it ('carry out' is 'pickup')."""
    said = words(text)
    spoken = f" {' '.join(said)} "
    squeezed = {re.sub(r"[^a-z0-9]", "", w) for w in said} | {a + b for a, b in pairwise(said)}
    for choice in sorted(choices, key=lambda c: -len(str(c))):
        phrase = " ".join(words(str(choice)))
        if phrase and f" {phrase} " in spoken:
            return choice
        key = re.sub(r"[^a-z0-9]", "", str(choice).lower())
        if key and (key in squeezed or any(f" {s} " in spoken for s in ENUM_SYNONYMS.get(key, ()))):
            return choice
    return None
