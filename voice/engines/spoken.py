"""Text as it should be said: times, dates, money, numbers and phone numbers in words, for the TTS.

    spoken("Your appointment is Tue 3/14 at 9:00 AM.")
    -> "Your appointment is Tuesday, March fourteenth at nine AM."

A TTS engine reads digits as it finds them: espeak-ng (which piper phonemizes with) says "9:00 AM" as
"nine zero zero AM" and "(555) 010-0001" as "five hundred fifty-five zero ten dash ...", and a neural
engine (Chatterbox) guesses. `spoken()` rewrites what it recognises, in this order:

- phone numbers, E.164 ("+15550100001") or written ("(555) 010-0001"), digit by digit in groups;
- money ("$45.50": "forty-five dollars and fifty cents"), percentages ("15%": "fifteen percent");
- clock times: "9:00 AM" and "9 am" as "nine AM", "12:15pm" as "twelve fifteen PM", 24-hour "17:30"
  as "five thirty PM";
- dates: "2026-03-14", "March 14", "Mar 14th, 2026", "14 March", and "3/14" after a weekday or "on"
  ("Tue 3/14": "Tuesday, March fourteenth"); a bare "3/14" may be a fraction and is left alone;
- ordinals ("3rd": "third"), then plain numbers ("1,250": "one thousand, two hundred and fifty",
  "2.5": "two point five", a year after "in"/"since"/...: "twenty twenty-six"); numbers with a
  leading zero or of five digits and more without separators (zip codes, order numbers) digit by digit.

Letters are never re-cased: "FAQ" is spelled out by espeak, "faq" would be read as a word. Numbers to
words come from num2words.
"""

import re
from datetime import date

from num2words import num2words

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
MONTH_ABBREVIATIONS = {m[:3]: m for m in MONTHS} | {"Sept": "September"}
WEEKDAYS = {
    "Mon": "Monday",
    "Tue": "Tuesday",
    "Tues": "Tuesday",
    "Wed": "Wednesday",
    "Thu": "Thursday",
    "Thur": "Thursday",
    "Thurs": "Thursday",
    "Fri": "Friday",
    "Sat": "Saturday",
    "Sun": "Sunday",
}
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SCALES = ("thousand", "million", "billion")
YEAR_CONTEXT = ("in", "since", "by", "of", "from", "until", "till", "through", "year", "before", "after")
MONTH_WORDS = {m.lower() for m in [*MONTHS, *MONTH_ABBREVIATIONS]}
DATE_CONTEXT = ("on", "by", "until", "till", "from", "since", "due", "before", "after", "through")

_MONTH = r"(?P<month>" + "|".join(MONTHS + sorted(MONTH_ABBREVIATIONS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(?P<weekday>" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + r")\.?"
_END = r"(?![\w])"  # not followed by a letter or digit
_START = r"(?<![\w])"

PHONE_E164 = re.compile(_START + r"\+(?P<digits>\d{8,15})" + _END)
PHONE_WRITTEN = re.compile(
    _START + r"(?P<country>\+?1[\s.-])?\(?(?P<area>\d{3})\)?[\s.-]?(?P<exchange>\d{3})[\s.-](?P<line>\d{4})" + _END
)
MONEY = re.compile(
    r"\$(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d{1,2}))?(?:\s(?P<scale>" + "|".join(SCALES) + r"))?" + _END
)
PERCENT = re.compile(_START + r"(?P<number>\d+(?:\.\d+)?)\s?(?:%|percent\b)")
TIME_12H = re.compile(
    _START
    + r"(?P<hour>1[0-2]|0?[1-9])(?::(?P<minute>[0-5]\d))?\s?(?P<half>[AaPp])(?P<dots>\.\s?[Mm]\.|\s?[Mm])(?![\w])"
)
TIME_24H = re.compile(_START + r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?::[0-5]\d)?" + _END)
ISO_DATE = re.compile(_START + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})" + _END)
WEEKDAY_BEFORE_DATE = re.compile(
    r"\b" + _WEEKDAY + r",?\s+(?=\d{1,2}/\d{1,2}|" + _MONTH.replace("?P<month>", "?:") + r"\s+\d)"
)
SLASH_DATE = re.compile(
    r"(?P<before>\b(?:" + "|".join(list(WEEKDAYS.values()) + list(DATE_CONTEXT)) + r"),?\s+)?"
    r"(?<![\w/])(?P<month>1[0-2]|0?[1-9])/(?P<day>3[01]|[12]\d|0?[1-9])(?:/(?P<year>\d{4}|\d{2}))?(?![\w/])"
)
MONTH_DAY = re.compile(
    r"\b"
    + _MONTH
    + r"\s+(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
    + _END
    + r"(?:,?\s+(?P<year>\d{4})"
    + _END
    + ")?"
)
DAY_MONTH = re.compile(r"\b(?P<day>3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"\b")
RANGE = re.compile(_START + r"(?P<low>\d{1,4})\s?[-\u2013]\s?(?P<high>\d{1,4})" + _END)
ORDINAL = re.compile(_START + r"(?P<number>\d+)(?:st|nd|rd|th)" + _END)
NUMBER = re.compile(
    r"(?P<before>\b[A-Za-z]+\s+)?"
    r"(?<![\w.,])(?P<sign>-)?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?(?![\w]|[.,]\d)"
)


def spoken(text: str) -> str:
    """`text` with the numbers, times, dates, amounts and phone numbers it holds written as words."""
    for pattern, say in (
        (PHONE_E164, _phone_e164),
        (PHONE_WRITTEN, _phone_written),
        (MONEY, _money),
        (PERCENT, _percent),
        (TIME_12H, _time_12h),
        (TIME_24H, _time_24h),
        (ISO_DATE, _iso_date),
        (WEEKDAY_BEFORE_DATE, _weekday),
        (SLASH_DATE, _slash_date),
        (MONTH_DAY, _month_day),
        (DAY_MONTH, _day_month),
        (RANGE, _range),
        (ORDINAL, _ordinal),
        (NUMBER, _number),
    ):
        text = pattern.sub(say, text)
    return text


# --- words for numbers ----------------------------------------------------------------------------


def cardinal(number: int) -> str:
    return num2words(number)


def ordinal(number: int) -> str:
    return num2words(number, to="ordinal")


def year(number: int) -> str:
    return num2words(number, to="year")


def digit_by_digit(digits: str) -> str:
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def _decimal(whole: str, fraction: str | None) -> str:
    words = cardinal(int(whole.replace(",", "")))
    return f"{words} point {digit_by_digit(fraction)}" if fraction else words


# --- phone numbers ----------------------------------------------------------------------------------


def _groups(*groups: str) -> str:
    return ", ".join(digit_by_digit(g) for g in groups if g)


def _phone_e164(m: re.Match) -> str:
    digits = m["digits"]
    if len(digits) == 11 and digits.startswith("1"):  # North America: 1 555 010 0001
        return f"plus {_groups(digits[0], digits[1:4], digits[4:7], digits[7:])}"
    head, tail = digits[:-4], digits[-4:]
    return f"plus {_groups(*[head[i : i + 3] for i in range(0, len(head), 3)], tail)}"


def _phone_written(m: re.Match) -> str:
    country = ("plus one, " if m["country"].startswith("+") else "one, ") if m["country"] else ""
    return country + _groups(m["area"], m["exchange"], m["line"])


# --- amounts ------------------------------------------------------------------------------------------


def _money(m: re.Match) -> str:
    whole, cents, scale = int(m["whole"].replace(",", "")), m["cents"], m["scale"]
    if scale:  # "$1.5 million": one point five million dollars
        return f"{_decimal(m['whole'], cents)} {scale} dollars"
    cents_value = int(cents.ljust(2, "0")) if cents else 0
    dollars = f"{cardinal(whole)} dollar{'' if whole == 1 else 's'}"
    if not cents_value:
        return dollars
    cents_words = f"{cardinal(cents_value)} cent{'' if cents_value == 1 else 's'}"
    return cents_words if whole == 0 else f"{dollars} and {cents_words}"


def _percent(m: re.Match) -> str:
    whole, _, fraction = m["number"].partition(".")
    return f"{_decimal(whole, fraction or None)} percent"


# --- clock times --------------------------------------------------------------------------------------


def clock(hour: int, minute: int, half: str = "") -> str:
    """'nine AM', 'nine thirty PM', 'nine oh five'; without `half`, 'nine o'clock' on the hour."""
    words = cardinal(hour)
    if minute:
        words += f" oh {cardinal(minute)}" if minute < 10 else f" {cardinal(minute)}"
    elif not half:
        words += " o'clock"
    return f"{words} {half}" if half else words


def _time_12h(m: re.Match) -> str:
    words = clock(int(m["hour"]), int(m["minute"] or 0), "AM" if m["half"] in "Aa" else "PM")
    # "a.m." also ends the sentence when nothing, or a new sentence, follows its dot.
    ends_sentence = m["dots"].endswith(".") and re.match(r"\s*(?:$|[A-Z])", m.string[m.end() :])
    return f"{words}." if ends_sentence else words


def _time_24h(m: re.Match) -> str:
    hour, minute = int(m["hour"]), int(m["minute"])
    if hour > 12 or hour == 0 or m["hour"].startswith("0"):  # 24-hour notation: say which half of the day
        return clock(hour % 12 or 12, minute, "AM" if hour < 12 else "PM")
    return clock(hour, minute)  # "9:30": the half of the day is not written, so it is not said


# --- dates ----------------------------------------------------------------------------------------------


def _month_name(month: str) -> str:
    return MONTH_ABBREVIATIONS.get(month, month)


def _with_year(words: str, year_text: str | None) -> str:
    if not year_text:
        return words
    value = int(year_text)
    return f"{words}, {year(value + 2000 if len(year_text) == 2 else value)}"


def _iso_date(m: re.Match) -> str:
    try:
        day = date(int(m["year"]), int(m["month"]), int(m["day"]))
    except ValueError:
        return m[0]
    return f"{MONTHS[day.month - 1]} {ordinal(day.day)}, {year(day.year)}"


def _weekday(m: re.Match) -> str:
    return f"{WEEKDAYS[m['weekday']]}, "


def _slash_date(m: re.Match) -> str:
    if not m["before"] and not m["year"]:
        return m[0]  # "3/4" alone may be a fraction
    words = _with_year(f"{MONTHS[int(m['month']) - 1]} {ordinal(int(m['day']))}", m["year"])
    return f"{m['before'] or ''}{words}"


def _month_day(m: re.Match) -> str:
    return _with_year(f"{_month_name(m['month'])} {ordinal(int(m['day']))}", m["year"])


def _day_month(m: re.Match) -> str:
    return f"the {ordinal(int(m['day']))} of {_month_name(m['month'])}"


# --- plain numbers ------------------------------------------------------------------------------------


def _range(m: re.Match) -> str:
    return f"{m['low']} to {m['high']}"  # "3-5 days": the numbers themselves are said by the next rule


def _ordinal(m: re.Match) -> str:
    return ordinal(int(m["number"]))


def _number(m: re.Match) -> str:
    before, whole, fraction = m["before"] or "", m["whole"], m["fraction"]
    sign = "minus " if m["sign"] else ""
    plain = "," not in whole
    if plain and not fraction and (len(whole) >= 5 or (len(whole) > 1 and whole.startswith("0"))):
        return f"{before}{sign}{digit_by_digit(whole)}"  # a code, not a quantity: zip, order number
    previous = before.strip().lower()
    if (
        plain
        and not fraction
        and not sign
        and len(whole) == 4
        and (previous in YEAR_CONTEXT or previous in MONTH_WORDS)
    ):
        return f"{before}{year(int(whole))}"
    return f"{before}{sign}{_decimal(whole, fraction)}"
