"""A Twilio conference end to end on the offline engines (Whisper, the local responder, piper), checked by
ear: the API asks for the supervisor, the fake Twilio answers and streams them in, and piper sentences
spoken by the supervisor and by the caller are transcribed by the agent's Whisper into transcript turns and
by the test's Whisper out of what the other party heard over the 8 kHz line."""

import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from calls.models import Call, TranscriptTurn
from integrations import services as credential_services
from telephony.models import PhoneNumber
from tenants.services import api_key_create
from tests import factories
from tests.e2e.test_offline_call import transcribe, whisper, words  # noqa: F401 (the `whisper` fixture)
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.telephony.peer import speech_wav, write_wav
from tests.telephony.test_twilio_conference import (
    api_transfer,
    conversing_call,
    merged,
    turn_with,
    until,
)
from tests.telephony.test_twilio_e2e import GREETING, at_8k
from tests.telephony.test_twilio_stream import OUR_NUMBER, wait_for_call
from tests.voice.session_support import make_agent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # Whisper, piper and a live server: `make test-fast` skips it

SUPERVISOR_SAYS = "Hello, this is the duty manager speaking."


CALLER_WORDS = {"would", "like", "refund", "last", "visit"}
WINDOW_MARGIN = 3200  # samples (0.4 s at 8 kHz): the mix's own delay, and the end of the sentence


@database_sync_to_async
def turn_with_most(call_id, wanted: set[str], at_least: int = 3) -> bool:
    texts = TranscriptTurn.objects.dangerously_unscoped().filter(call_id=call_id, speaker="caller")
    return any(
        len(wanted & set(re.findall(r"[a-z]+", t.lower()))) >= at_least for t in texts.values_list("text", flat=True)
    )


@database_sync_to_async
def turns_of(call_id, speaker: str) -> int:
    return TranscriptTurn.objects.dangerously_unscoped().filter(call_id=call_id, speaker=speaker).count()


def _async(count, *, more_than: int):
    async def check() -> bool:
        return await count() > more_than

    return check


CALLER_SAYS = "I would like a refund for my last visit."


@pytest.fixture
def setup(asgi_server, settings):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)
    agent = make_agent(tenant, name="Receptionist", greeting=GREETING, tools=[])
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164=OUR_NUMBER, provider=PhoneNumber.Provider.TWILIO)
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_WEBHOOK_BASE_URL = asgi_server.url
    yield asgi_server, fake, api_key_create(tenant=tenant, name="e2e", scopes=["read", "write"]).secret
    fake.stop()


def test_the_supervisor_and_the_caller_hear_each_other_and_the_agent_transcribes_both(setup, whisper, tmp_path):  # noqa: F811
    server, fake, key = setup
    supervisor_says, caller_says = at_8k(speech_wav(SUPERVISOR_SAYS)), at_8k(speech_wav(CALLER_SAYS))

    async def scenario():
        caller, caller_line, call = await conversing_call(server, timeout=90)
        await api_transfer(server, key, call.pk)
        _consult, supervisor, supervisor_line = await merged(fake, call)
        agent_turns = await turns_of(call.pk, "agent")
        caller_from = len(caller.heard)  # 8 kHz mu-law: one byte a sample
        supervisor_line.say(supervisor_says)
        await until(lambda: turn_with(call.pk, "caller", {"duty", "manager"}), "the supervisor transcribed", 90)
        # The agent answers the supervisor's words: the caller speaks once it has finished (its turn is stored
        # when its speech ends), so what the supervisor hears of the caller is not under the agent's voice.
        await until(_async(lambda: turns_of(call.pk, "agent"), more_than=agent_turns), "the agent answered", 90)
        supervisor_from = len(supervisor.heard)
        caller_line.say(caller_says)
        # Whisper tiny over the 8 kHz line may hear "refund" as "read for": most of the sentence must come through.
        await until(lambda: turn_with_most(call.pk, CALLER_WORDS), "the caller transcribed", 90)
        await supervisor_line.hang_up()
        await caller_line.hang_up()
        ended = await wait_for_call(pk=call.pk, status="ended", timeout=60)
        # What each heard while the other spoke (and a little after): not the agent's replies that followed.
        heard_by_caller = caller.heard_samples()[caller_from : caller_from + len(supervisor_says) + WINDOW_MARGIN]
        heard_by_supervisor = supervisor.heard_samples()[
            supervisor_from : supervisor_from + len(caller_says) + WINDOW_MARGIN
        ]
        return ended, heard_by_caller, heard_by_supervisor

    call, heard_by_caller, heard_by_supervisor = async_to_sync(scenario)()
    caller_heard = words(transcribe(whisper, write_wav(tmp_path / "caller.wav", heard_by_caller, 8000)))
    supervisor_heard = words(transcribe(whisper, write_wav(tmp_path / "supervisor.wav", heard_by_supervisor, 8000)))
    assert len(caller_heard & {"this", "duty", "manager", "speaking"}) >= 3, caller_heard
    assert len(supervisor_heard & CALLER_WORDS) >= 3, supervisor_heard
    assert call.end_reason == Call.EndReason.CALLER_HANGUP
