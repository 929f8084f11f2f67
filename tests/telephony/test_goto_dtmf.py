"""The agent presses keys on a GoTo call: in-band DTMF on the call's WebRTC leg (docs/telephony.md#goto-connect).

The fake GoTo's caller peer (a real aiortc peer) records what it hears; the keys are read back from that
audio by the Goertzel power of the eight DTMF frequencies, so the test checks what reached the far end,
not what the bridge meant to send. GoTo's grade-D `/dtmf` route is not used.
"""

import functools

import numpy as np
import pytest
from asgiref.sync import async_to_sync

from calls.models import ToolCall
from telephony.media.dtmf import COLUMNS, FREQUENCIES, ROWS
from tests import factories
from tests.telephony.bridge_support import phone_system, wait_for_call, wait_quiet
from tests.telephony.peer import HEARD_RATE, RATE, write_wav
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import FAST_TURNS, fake_models, make_agent

pytestmark = pytest.mark.slow  # a media worker, a WebRTC call and an agent session

OUR_NUMBER, CALLER = "+15559876543", "+15551234567"


def respond(chat_ctx) -> Reply:
    output = last_tool_output(chat_ctx)
    if output is not None and "digits" in output.output:
        return Reply(text="Done.")
    if "menu" in last_user_text(chat_ctx).lower():
        return Reply(text="Pressing one and two.", tool="send_digits", arguments={"digits": "12#"})
    return Reply(text="Sure.")


@pytest.fixture
def agent(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    agent = make_agent(tenant, name="Receptionist", greeting="Hello from Acme.", tools=[])
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164=OUR_NUMBER)
    return agent


def dtmf_heard(samples: np.ndarray, rate: int) -> str:
    """The keys in `samples`: per 50 ms window, the loudest row and column tone, if both stand out."""
    keys, previous, size = [], "", int(rate * 0.05)
    basis = np.arange(size) / rate
    for start in range(0, len(samples) - size, size):
        window = samples[start : start + size].astype(float)
        power = {f: abs(np.dot(window, np.exp(-2j * np.pi * f * basis))) for f in ROWS + COLUMNS}
        row, column = max(ROWS, key=power.get), max(COLUMNS, key=power.get)
        loud = min(power[row], power[column]) > 0.1 * size * 32767 * 0.25
        clean = sorted(power.values())[-3] < 0.3 * min(power[row], power[column])
        key = next((k for k, pair in FREQUENCIES.items() if pair == (row, column)), "") if loud and clean else ""
        if key and key != previous:
            keys.append(key)
        previous = key
    return "".join(keys)


def test_the_detector_reads_the_keys_of_our_own_tones_and_nothing_in_a_plain_tone():
    from telephony.media import dtmf

    frame = dtmf.tones("12#", rate=HEARD_RATE)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    t = np.arange(HEARD_RATE) / HEARD_RATE
    assert dtmf_heard(samples, HEARD_RATE) == "12#"
    assert dtmf_heard((0.3 * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16), HEARD_RATE) == ""


def test_the_agent_presses_keys_on_a_goto_call_as_in_band_tones_the_far_end_hears(agent, settings, tmp_path):
    t = np.arange(int(RATE * 0.6)) / RATE
    ask = write_wav(tmp_path / "ask.wav", (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16), RATE)
    bridge = {
        "models_factory": functools.partial(fake_models, respond, ["Main menu, press one for sales"]),
        "turn_handling": FAST_TURNS,
        "session_options": {"session_close_transcript_timeout": 0.1},
    }

    async def scenario():
        async with phone_system(settings, agent.tenant_id, **bridge) as (fake, pbx):
            external_id = fake.ring(from_=CALLER, to=OUR_NUMBER)
            caller = await pbx.answered(external_id)
            call = await wait_for_call(external_call_id=external_id)
            await wait_for_call(pk=call.pk, status="conversing")
            await caller.wait_heard(0.3, timeout=20)
            await wait_quiet(caller)  # the greeting is over
            before = len(caller.heard())
            caller.say(ask)  # the scripted STT hears the menu line
            await caller.wait_heard(caller.heard_seconds + 0.3, timeout=20)  # the answer begins
            await wait_quiet(caller, quiet=1.5)
            heard = caller.heard()[before:]
            fake.hangup_remote(external_id)
            return await wait_for_call(pk=call.pk, status="ended"), fake, heard

    call, fake, heard = async_to_sync(scenario)()
    assert dtmf_heard(heard, HEARD_RATE) == "12#"
    [tool] = ToolCall.objects.dangerously_unscoped().filter(call=call, tool_name="send_digits")
    assert (tool.arguments, tool.status) == ({"digits": "12#"}, "succeeded")
    assert fake.requests_to(r"/dtmf$") == []  # in-band only: GoTo's unverified route is not used
