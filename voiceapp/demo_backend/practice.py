"""Demo Dental's rules (opening hours, the half-hour appointment grid, services) and how dates and times are said.

Pure functions, no database: the demo FAQ (`seed_demo`) states the same hours, so what the agent says and
what the calendar allows agree.
"""

import re
from datetime import date, datetime, time, timedelta

DEMO_SLUG = "demo-dental"
SLOT_MINUTES = 30
# weekday (Monday 0) -> (first start, closing time); Sunday is closed.
HOURS: dict[int, tuple[time, time]] = {
    **{weekday: (time(8), time(17)) for weekday in range(5)},
    5: (time(9), time(12)),
}
HOURS_SENTENCE = "We're open Monday to Friday from 8 AM to 5 PM, and Saturday from 9 AM to noon."
HORIZON_DAYS = 183  # appointments are booked up to about six months ahead
SERVICES = ("check-up", "cleaning", "whitening", "filling", "emergency")
DEFAULT_SERVICE = "check-up"
SERVICE_NOUNS = {"whitening": "whitening session", "emergency": "emergency visit"}
LATE_CANCEL_HOURS = 24
LATE_CANCEL_FEE = "25-dollar"
MAX_SUGGESTIONS = 4  # a caller cannot keep more than a handful of times in mind

ISO_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ].*)?$")
CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::00)?$")
REFERENCE_RE = re.compile(r"\bD\W*D\W*(\d)\W*(\d)\W*(\d)\W*(\d)\b", re.IGNORECASE)
SPOKEN_TIME_RE = re.compile(r"^(1[0-2]|0?[1-9])(?::([0-5]\d))?\s*([ap])\.?\s*m\.?$")


def slots_of(day: date) -> list[time]:
    """Every appointment start of the day, every SLOT_MINUTES from opening until the last that ends by closing."""
    hours = HOURS.get(day.weekday())
    if hours is None:
        return []
    opening, closing = (datetime.combine(day, t) for t in hours)
    step, starts = timedelta(minutes=SLOT_MINUTES), []
    while opening + step <= closing:
        starts.append(opening.time())
        opening += step
    return starts


def is_open(day: date) -> bool:
    return day.weekday() in HOURS


def hours_of(day: date) -> str:
    """'on Saturdays we're open from 9 AM to noon'."""
    hours = HOURS.get(day.weekday())
    if hours is None:
        return f"we're closed on {day:%A}s"
    return f"on {day:%A}s we're open from {say_time(hours[0])} to {say_time(hours[1])}"


def parse_date(value: object) -> date | None:
    """A YYYY-MM-DD date (a date-time's date part too), or None."""
    match = ISO_DATE_RE.match(str(value or "").strip())
    if not match:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


def parse_time(value: object) -> time | None:
    """'15:00', '9:30', '15:00:00', '3 pm', '3:30 PM' -> a time, or None."""
    text = str(value or "").strip().lower()
    if match := CLOCK_RE.match(text):
        return time(int(match[1]), int(match[2]))
    if match := SPOKEN_TIME_RE.match(text):
        hour = int(match[1]) % 12 + (12 if match[3] == "p" else 0)
        return time(hour, int(match[2] or 0))
    return None


def parse_reference(value: object) -> str | None:
    """'DD4821', 'dd-4821', 'D D 4 8 2 1' -> 'DD4821'; None when the text holds no reference."""
    match = REFERENCE_RE.search(str(value or ""))
    return f"DD{''.join(match.groups())}" if match else None


def say_time(moment: time) -> str:
    """'8 AM', '2:30 PM', 'noon'."""
    if moment == time(12):
        return "noon"
    suffix, hour = ("AM" if moment.hour < 12 else "PM"), moment.hour % 12 or 12
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def say_date(day: date) -> str:
    """'Tuesday, January 8'."""
    return f"{day:%A}, {day:%B} {day.day}"


def say_list(items: list[str], conjunction: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def say_service(service: str, article: str = "a") -> str:
    """'a cleaning', 'an emergency visit', 'the filling'."""
    noun = SERVICE_NOUNS.get(service, service)
    if article == "a" and noun[:1] in "aeiou":
        article = "an"
    return f"{article} {noun}"


def say_reference(reference: str) -> str:
    """'DD4821' -> 'D D 4 8 2 1': read out one character at a time."""
    return " ".join(reference)


def spread(starts: list[time], count: int = MAX_SUGGESTIONS) -> list[time]:
    """At most `count` of the starts, spread over the day (first and last included)."""
    if len(starts) <= count:
        return list(starts)
    step = (len(starts) - 1) / (count - 1)
    return [starts[round(n * step)] for n in range(count)]


def nearest(starts: list[time], wanted: time, count: int = 2) -> list[time]:
    """The `count` starts closest to `wanted`, in clock order."""
    minutes = wanted.hour * 60 + wanted.minute
    closest = sorted(starts, key=lambda t: (abs(t.hour * 60 + t.minute - minutes), t))[:count]
    return sorted(closest)


def clock(moment: time) -> str:
    """The machine form of a start in answers: 'HH:MM'."""
    return f"{moment:%H:%M}"
