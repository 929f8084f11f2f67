"""Barge-in: the caller talks over the agent; false interruptions: a noise does not cut the agent off."""

import pytest

from calls.models import TranscriptTurn
from tests.voice.session_fakes import Reply, ToneTTS, last_user_text, silence
from tests.voice.session_support import Caller, agent_fixture, call_fixture, fake_models, run  # noqa: F401

STORY = (
    "Our practice opened in nineteen ninety. We have four dentists and two hygienists. "
    "Parking is free behind the building. We also offer evening appointments on Thursdays."
)


def talker(chat_ctx):
    said = last_user_text(chat_ctx).lower()
    return Reply("Okay, stopping." if "stop" in said else STORY)


async def barge_in(call, tts):
    # real time: the transcript synchronizer paces words by the audio's own speaking rate
    caller = Caller(speed=1.0)
    await caller.connect(call, fake_models(talker, ["Tell me about you", "Stop please"], tts=tts))
    await caller.wait_for_agent(1)
    await caller.say()
    # let about two seconds of the story play, then talk over it
    await caller.wait_until(lambda: caller.session.session.agent_state == "speaking")
    await caller.feed(silence(2.0))
    await caller.say()
    await caller.wait_for_agent(3)
    await caller.hang_up()
    return caller


@pytest.mark.slow
def test_caller_talking_over_the_agent_cuts_it_off(call):
    tts = ToneTTS(seconds_per_char=0.04)
    caller = run(barge_in, call, tts)

    turns = list(TranscriptTurn.objects.dangerously_unscoped().filter(call=call).order_by("turn_number"))
    assert [(t.speaker, t.interrupted) for t in turns] == [
        ("agent", False),
        ("caller", False),
        ("agent", True),
        ("caller", False),
        ("agent", False),
    ]
    story = turns[2]
    # what is stored is what the caller heard: a beginning of the story, not all of it
    assert story.text and STORY.startswith(story.text) and len(story.text) < len(STORY) * 0.7
    # the rest of the story was never played
    played = sum(f.duration for _, f in caller.played)
    greeting, stop = tts.seconds(turns[0].text), tts.seconds("Okay, stopping.")
    story_played = played - greeting - stop
    full_story = sum(tts.seconds(s) for s in tts.spoken if STORY.find(s) >= 0)
    assert 1.5 < story_played < full_story * 0.7
    # and the stored words follow the audio that was played
    assert len(story.text) / len(STORY) == pytest.approx(story_played / full_story, abs=0.2)
    assert turns[4].text == "Okay, stopping."


async def cough(call, tts, events):
    caller = Caller()
    await caller.connect(call, fake_models(talker, ["Tell me about you", ""], tts=tts))
    caller.session.session.on("agent_false_interruption", events.append)
    await caller.wait_for_agent(1)
    await caller.say()
    await caller.wait_until(lambda: caller.session.session.agent_state == "speaking")
    await caller.say(0.4)  # a noise long enough to pause the agent, with no words in it
    await caller.wait_for_agent(2, timeout=20)
    await caller.hang_up()
    return caller


def test_a_noise_pauses_the_agent_and_it_carries_on(call):
    events = []
    run(cough, call, ToneTTS(seconds_per_char=0.03), events)

    story = TranscriptTurn.objects.dangerously_unscoped().get(call=call, turn_number=3)
    assert (story.text, story.interrupted) == (STORY, False)
    assert [e.resumed for e in events] == [True]
