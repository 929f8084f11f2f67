"""Turn a tool's JSON result into words a caller can hear (offline responder)."""

import re
from datetime import date

from voice.engines.responder.text import human_list, humanize_name

SPOKEN_KEYS = ("message", "speech", "say", "text", "summary", "result", "status_message")
CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::00)?$")
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")
MAX_ITEMS = 6  # a caller cannot keep more than a handful of options in mind


def describe(data: object) -> str:
    """One or two sentences for any JSON value; empty when there is nothing to say."""
    if isinstance(data, dict):
        return _describe_dict(data)
    if isinstance(data, list):
        items = [value(v) for v in data[:MAX_ITEMS] if not isinstance(v, (dict, list))]
        return f"Here's what I found: {human_list(items)}." if items else ""
    if data is None or data == "":
        return ""
    text = value(data)
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _describe_dict(data: dict) -> str:
    for key in SPOKEN_KEYS:
        if isinstance(data.get(key), str) and data[key].strip():
            return data[key].strip()
    parts = []
    for key, item in data.items():
        if isinstance(item, list):
            items = [value(v) for v in item[:MAX_ITEMS] if not isinstance(v, (dict, list))]
            parts.append(f"{humanize_name(key)}: {human_list(items) if items else 'none'}")
        elif not isinstance(item, dict) and item is not None:
            parts.append(f"{humanize_name(key)} {value(item)}")
    return f"Here's what I found: {'; '.join(parts)}." if parts else ""


def value(item: object) -> str:
    """A scalar as spoken: booleans as yes/no, clock times as '2:30 PM', ISO dates as weekdays."""
    if isinstance(item, bool):
        return "yes" if item else "no"
    text = str(item).strip()
    if m := ISO_DATETIME_RE.match(text):
        return f"{_date(m[1])} at {_clock(m[2])}"
    if ISO_DATE_RE.match(text):
        return _date(text)
    if CLOCK_RE.match(text):
        return _clock(text)
    return text


def _clock(text: str) -> str:
    hour, minute = (int(p) for p in text.split(":")[:2])
    suffix = "AM" if hour < 12 else "PM"
    hour = hour % 12 or 12
    return f"{hour} {suffix}" if minute == 0 else f"{hour}:{minute:02d} {suffix}"


def _date(text: str) -> str:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return text
    return f"{day:%A}, {day:%B} {day.day}"
