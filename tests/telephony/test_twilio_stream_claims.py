"""A Twilio stream token opens one stream for its call, and a socket that never starts is closed.

The first test reads the claim directly (no socket: two starts racing each other cannot be ordered from
outside); the second runs through Uvicorn as tests/telephony/test_twilio_stream.py does.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from calls.models import Call
from telephony.carriers.twilio import consumer as stream_consumer
from telephony.carriers.twilio.consumer import TwilioStreamConsumer
from tests.telephony.fake_twilio import new_call_sid
from tests.telephony.test_twilio_stream import (  # noqa: F401 (fixtures)
    closed,
    fake_engines,
    fake_twilio,
    number,
    open_stream,
    ring,
    server,
)


@pytest.fixture
def ringing_call(server):  # noqa: F811
    call_sid = new_call_sid()
    async_to_sync(ring)(server, call_sid)
    return Call.objects.dangerously_unscoped().get(external_call_id=call_sid)


def test_the_first_start_claims_the_call_and_a_second_one_is_refused(ringing_call):
    call = ringing_call
    args = (str(call.pk), str(call.tenant_id), call.external_call_id)
    first = stream_consumer._waiting_call(*args)
    assert first is not None and str(first.call_id) == str(call.pk)
    assert stream_consumer._waiting_call(*args) is None  # the call is still ringing, but it has its stream


def test_a_socket_that_never_sends_start_is_closed_and_creates_nothing(server, monkeypatch):  # noqa: F811
    monkeypatch.setattr(TwilioStreamConsumer, "start_timeout", 0.2)

    async def scenario():
        import websockets

        caller = await open_stream(server, new_call_sid(), "unused")
        caller.socket = await websockets.connect(caller.url, open_timeout=10)
        caller._reader = asyncio.create_task(caller._read())
        return await closed(caller)

    assert async_to_sync(scenario)() == 1008
    assert Call.objects.dangerously_unscoped().count() == 0
