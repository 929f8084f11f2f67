"""Text for speech: what the TTS engines are given to say for times, dates, money, numbers and phone numbers."""

import pytest

from voice.engines.piper_tts import get_voice, speakable
from voice.engines.spoken import spoken


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("9:00 AM", "nine AM"),
        ("Open 9 am to 5pm.", "Open nine AM to five PM."),
        ("at 12:15pm", "at twelve fifteen PM"),
        ("at 9:05 AM", "at nine oh five AM"),
        ("at 9 a.m. tomorrow", "at nine AM tomorrow"),
        ("See you at 9 a.m.", "See you at nine AM."),  # the dot that ends the sentence stays
        ("I have 9:00 AM and 2:00 PM.", "I have nine AM and two PM."),
        ("until 17:30", "until five thirty PM"),
        ("from 09:00", "from nine AM"),
        ("at 00:15", "at twelve fifteen AM"),
        ("about 9:30", "about nine thirty"),  # no AM/PM written, none said
        ("at 10:00", "at ten o'clock"),
    ],
)
def test_clock_times(written, said):
    assert spoken(written) == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("Tue 3/14", "Tuesday, March fourteenth"),
        ("Tue 3/14 at 9:00 AM", "Tuesday, March fourteenth at nine AM"),
        ("on 3/14", "on March fourteenth"),
        ("3/14/2026", "March fourteenth, twenty twenty-six"),
        ("3/14/26", "March fourteenth, twenty twenty-six"),
        ("March 14", "March fourteenth"),
        ("Mar 14th, 2026", "March fourteenth, twenty twenty-six"),
        ("Sat, Nov 21", "Saturday, November twenty-first"),
        ("14 March", "the fourteenth of March"),
        ("2026-03-14", "March fourteenth, twenty twenty-six"),
        ("in 2026", "in twenty twenty-six"),
        ("March 2026", "March twenty twenty-six"),
        ("3/4 cup", "three/four cup"),  # a bare slash may be a fraction: not made a date
    ],
)
def test_dates(written, said):
    assert spoken(written) == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("$45.50", "forty-five dollars and fifty cents"),
        ("$45", "forty-five dollars"),
        ("$1", "one dollar"),
        ("$0.50", "fifty cents"),
        ("$1.01", "one dollar and one cent"),
        ("$1,200", "one thousand, two hundred dollars"),
        ("$2.5 million", "two point five million dollars"),
        ("15% off", "fifteen percent off"),
        ("2.5%", "two point five percent"),
    ],
)
def test_money_and_percentages(written, said):
    assert spoken(written) == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("+15550100001", "plus one, five five five, zero one zero, zero zero zero one"),
        ("Call (555) 010-0001.", "Call five five five, zero one zero, zero zero zero one."),
        ("555-010-0001", "five five five, zero one zero, zero zero zero one"),
        ("+1 555.010.0001", "plus one, five five five, zero one zero, zero zero zero one"),
        ("+442071838750", "plus four four two, zero seven one, eight three, eight seven five zero"),
    ],
)
def test_phone_numbers_digit_by_digit(written, said):
    assert spoken(written) == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("the 3rd floor", "the third floor"),
        ("the 22nd", "the twenty-second"),
        ("12 Harbour Street", "twelve Harbour Street"),
        ("1,250 patients", "one thousand, two hundred and fifty patients"),
        ("2.5 hours", "two point five hours"),
        ("-5 degrees", "minus five degrees"),
        ("3-5 days", "three to five days"),
        ("zip 02139", "zip zero two one three nine"),
        ("order 483920", "order four eight three nine two zero"),
        ("COVID-19", "COVID-nineteen"),
    ],
)
def test_ordinals_and_plain_numbers(written, said):
    assert spoken(written) == said


def test_words_and_their_case_are_left_as_written():
    text = "Questions about Practice FAQ? Ask Dr. O'Neil [laugh], Monday to Friday."
    assert spoken(text) == text


def test_the_responders_opening_hours_are_said_in_words():
    assert spoken("Monday to Friday, 8 AM to 5 PM, and Saturday mornings 9 to noon.") == (
        "Monday to Friday, eight AM to five PM, and Saturday mornings nine to noon."
    )


def test_piper_says_nine_am_not_nine_zero_zero():
    voice = get_voice()
    said = "".join("".join(sentence) for sentence in voice.phonemize(speakable("Come at 9:00 AM.")))
    assert said == "".join("".join(sentence) for sentence in voice.phonemize("Come at nine AM."))
    zero = "".join(voice.phonemize("zero")[0])
    assert zero not in said
