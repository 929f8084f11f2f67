"""A new user's first test call with the demo agent, from the dashboard, by callers with other voices.

The demo is seeded as `make run` seeds it (`seed_demo`); the owner opens the demo agent's page and starts a
test call in Chromium, whose fake microphone asks two of the questions the first new user asked, each in a
Flite voice unlike the agent's own (tests/voice/voices.py): "What time do you open on Saturday?" (a US
woman) and "Where are you located?" (a Scottish man). The real pipeline runs on the offline engines (Silero
VAD, faster-whisper, the offline responder, piper); the agent must answer both from the demo's FAQ.
Waits are generous (small CI machines); nothing asserts on time.
"""

import re

import numpy as np
import pytest
from django.core.management import call_command

from agents.models import Agent
from calls.models import TranscriptTurn
from tenants.models import User
from tests.browser.conftest import chromium_path
from tests.browser.test_dashboard import CALL_WAIT_MS, hang_up, start_test_call
from tests.telephony.peer import RATE, read_wav, write_wav
from tests.voice.voices import flite_wav

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

QUESTIONS = [("What time do you open on Saturday?", "slt"), ("Where are you located?", "awb")]
GREETING_SECONDS = 14.0  # silence while the agent greets (it is ready sooner on idle cores)
ANSWER_SECONDS = 28.0  # silence after a question while the agent answers it in full
SATURDAY = "Saturday mornings from 9 AM to noon"  # the demo FAQ's answers
ADDRESS = "12 Harbour Street"


@pytest.fixture(scope="module")
def two_voices_mic(tmp_path_factory):
    pieces = [np.zeros(int(RATE * GREETING_SECONDS), dtype=np.int16)]
    for text, voice in QUESTIONS:
        pieces += [read_wav(flite_wav(text, voice), rate=RATE), np.zeros(int(RATE * ANSWER_SECONDS), dtype=np.int16)]
    return write_wav(tmp_path_factory.mktemp("demo") / "two_voices.wav", np.concatenate(pieces), RATE)


@pytest.fixture(scope="module")
def voices_browser(chromium, two_voices_mic):
    """A second Chromium (from the same Playwright) whose fake microphone plays the two callers."""
    browser = chromium.browser_type.launch(
        executable_path=chromium_path(),
        headless=True,
        args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={two_voices_mic}%noloop",
            "--autoplay-policy=no-user-gesture-required",
        ],
    )
    yield browser
    browser.close()


def test_the_demos_first_test_call_answers_callers_with_other_voices(
    voices_browser, asgi_server, sign_in, speech_engines
):
    call_command("seed_demo", "--force", "--base-url", asgi_server.url)
    owner = User.objects.get(username="demo")
    agent = Agent.objects.dangerously_unscoped().get(tenant__slug="demo-dental", name="Appointment Scheduler")
    context = voices_browser.new_context(base_url=asgi_server.url, permissions=["microphone"])
    page = sign_in(context.new_page(), owner)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    call_id = start_test_call(page, agent)
    transcript = page.get_by_test_id("test-call-transcript")
    answers = transcript.locator(".turn.speaker-caller:not(.interim) ~ .turn.speaker-agent")
    expect(answers.filter(has_text=SATURDAY).first).to_be_visible(timeout=CALL_WAIT_MS)
    expect(answers.filter(has_text=ADDRESS).first).to_be_visible(timeout=CALL_WAIT_MS)
    call = hang_up(page, call_id)
    context.close()

    assert errors == []
    turns = list(TranscriptTurn.objects.for_tenant(call.tenant).filter(call=call).order_by("turn_number"))
    said = [t.text for t in turns if t.speaker == "caller"]
    assert any(re.search(r"saturday", t, re.I) for t in said) and any(re.search(r"locat", t, re.I) for t in said)
    assert any(SATURDAY in t.text for t in turns if t.speaker == "agent")
    assert any(ADDRESS in t.text for t in turns if t.speaker == "agent")
