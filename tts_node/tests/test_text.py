"""Text preprocessing: tags per engine, numbers spelled out, sentences."""

import pytest

from tts_node.text import expand_numbers, prepare, split_sentences

SEED_TEXT = "I'd be happy to help you with that [chuckle]. Let me check your account."


def test_tags_pass_to_an_engine_that_renders_them():
    assert prepare(SEED_TEXT, supports_tags=True) == [
        "I'd be happy to help you with that [chuckle].",
        "Let me check your account.",
    ]


def test_tags_are_removed_for_an_engine_that_cannot():
    assert prepare(SEED_TEXT, supports_tags=False) == [
        "I'd be happy to help you with that.",
        "Let me check your account.",
    ]


def test_unknown_tags_never_reach_an_engine_and_known_ones_are_normalised():
    assert prepare("Well [LAUGH] that is [stage direction] funny.", supports_tags=True) == [
        "Well [laugh] that is funny."
    ]


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("It costs $12.50.", "It costs twelve dollars and fifty cents."),
        ("It costs $1.", "It costs one dollar."),
        ("Save 45% today.", "Save forty five percent today."),
        ("On the 3rd of May.", "On the third of May."),
        ("Come at 10:05 or 9:00.", "Come at ten oh five or nine o'clock."),
        ("Order 5551234 is ready.", "Order five five five one two three four is ready."),
        ("We have 1,200 seats and 2.5 rooms.", "We have one thousand, two hundred seats and two point five rooms."),
    ],
)
def test_numbers_are_spelled_out(text, spoken):
    assert expand_numbers(text) == spoken


def test_sentences_split_and_short_ones_join_the_next():
    assert split_sentences("Hi. OK. Your table is ready! Shall we go? Yes.") == [
        "Hi. OK. Your table is ready!",
        "Shall we go? Yes.",
    ]


def test_nothing_speakable():
    assert prepare("[laugh]", supports_tags=False) == []
    assert prepare("[laugh]", supports_tags=True) == ["[laugh]"]
