"""The browser test call: a WebRTC peer offers SDP over /ws/v1/test-calls and talks to its agent.

Driven through the real ASGI application (Channels' WebsocketCommunicator) with a real aiortc peer
as the browser; the agent runs on the scripted engines of the runtime tests.
"""

import functools

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from calls.models import Call, CallEvent
from telephony.consumers import BrowserCallConsumer
from tenants.models import Membership
from tenants.services import api_key_create
from tests import factories
from tests.telephony.bridge_support import wait_for_call
from tests.telephony.peer import CallerPeer
from tests.telephony.test_bridge_calls import models
from tests.voice.session_support import FAST_TURNS, make_agent
from voiceapp.asgi import application

TIMEOUT = 20


@pytest.fixture(autouse=True)
def fake_engines(monkeypatch):
    options = {
        "models_factory": functools.partial(models, ()),
        "turn_handling": FAST_TURNS,
        "session_options": {"session_close_transcript_timeout": 0.1},
    }
    monkeypatch.setattr(BrowserCallConsumer, "bridge_options", options)


@pytest.fixture
def agent(transactional_db):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    factories.SubscriptionFactory(tenant=tenant)
    return make_agent(tenant, name="Receptionist", greeting="Hello from Acme, this is a test call.", tools=[])


def key_of(tenant, scopes=("read", "write")) -> str:
    return api_key_create(tenant=tenant, name="socket", scopes=list(scopes)).secret


def socket(headers=(), query=""):
    headers = [(b"origin", b"http://localhost"), *headers]
    return WebsocketCommunicator(application, f"/ws/v1/test-calls{query}", headers=headers)


async def start_call(communicator, agent_id, peer):
    connected, _ = await communicator.connect(TIMEOUT)
    assert connected
    await communicator.send_json_to({"type": "start", "agent_id": str(agent_id), "sdp": await peer.create_offer()})
    return await communicator.receive_json_from(TIMEOUT)


def test_a_browser_talks_to_its_agent_and_sees_the_call_live(agent):
    key = key_of(agent.tenant)

    async def scenario():
        peer = CallerPeer()
        communicator = socket([(b"x-api-key", key.encode())])
        answer = await start_call(communicator, agent.pk, peer)
        assert answer["type"] == "answer", answer
        await peer.accept_answer(answer["sdp"])
        await peer.wait_heard(0.5, timeout=TIMEOUT)  # the greeting, over WebRTC
        seen = []
        while "transcript.turn" not in [m.get("event") for m in seen]:
            seen.append(await communicator.receive_json_from(TIMEOUT))
        await communicator.send_json_to({"type": "hangup"})
        while seen[-1].get("type") != "ended":
            seen.append(await communicator.receive_json_from(TIMEOUT))
        await communicator.disconnect()
        await peer.hangup()
        return answer["call_id"], seen

    call_id, seen = async_to_sync(scenario)()
    call = Call.objects.dangerously_unscoped().get(pk=call_id)
    assert (call.tenant_id, call.agent_id, call.direction) == (agent.tenant_id, agent.pk, "inbound")
    assert call.metadata["source"] == "browser_test"
    assert (call.status, call.end_reason) == ("ended", "caller_hangup")
    turn = next(m for m in seen if m.get("event") == "transcript.turn")
    assert turn["data"]["text"] == "Hello from Acme, this is a test call." and turn["sequence"] >= 1
    assert seen[-1] == {"type": "ended", "call_id": call_id, "end_reason": "caller_hangup"}
    stored = set(CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("sequence", flat=True))
    assert {m["sequence"] for m in seen if m.get("type") == "event"} <= stored


def test_closing_the_socket_hangs_up(agent):
    key = key_of(agent.tenant)

    async def scenario():
        peer = CallerPeer()
        communicator = socket([(b"x-api-key", key.encode())])
        answer = await start_call(communicator, agent.pk, peer)
        await peer.accept_answer(answer["sdp"])
        await peer.wait_heard(0.3, timeout=TIMEOUT)
        await communicator.disconnect()
        await peer.hangup()
        return await wait_for_call(pk=answer["call_id"], status="ended")

    call = async_to_sync(scenario)()
    assert call.end_reason == "caller_hangup"


def refused(headers=(), query="", message=None):
    async def scenario():
        communicator = socket(headers, query)
        connected, _ = await communicator.connect(TIMEOUT)
        assert connected
        if message is not None:
            await communicator.send_json_to(message)
        reply = await communicator.receive_json_from(TIMEOUT)
        closed = await communicator.receive_output(TIMEOUT)
        await communicator.disconnect()
        return reply, closed

    return async_to_sync(scenario)()


def test_another_tenants_agent_cannot_be_called(agent, other_tenant):
    other_key = key_of(other_tenant)
    reply, closed = refused(
        [(b"x-api-key", other_key.encode())], message={"type": "start", "agent_id": str(agent.pk), "sdp": "v=0"}
    )
    assert reply == {"type": "error", "code": "agent_not_found", "message": reply["message"]}
    assert closed == {"type": "websocket.close", "code": 4404}
    assert not Call.objects.dangerously_unscoped().exists()


def test_no_credentials_bad_keys_and_read_only_keys_are_refused(agent):
    reply, closed = refused()
    assert (reply["code"], closed["code"]) == ("not_authenticated", 4401)
    reply, closed = refused([(b"x-api-key", b"vk_live_nonsense")])
    assert closed["code"] == 4401
    read_only = key_of(agent.tenant, scopes=("read",))
    reply, closed = refused(
        [(b"x-api-key", read_only.encode())], message={"type": "start", "agent_id": str(agent.pk), "sdp": "v=0"}
    )
    assert (reply["code"], closed["code"]) == ("permission_denied", 4403)
    assert not Call.objects.dangerously_unscoped().exists()


def test_a_start_sent_on_a_refused_socket_before_its_close_is_refused_too(agent):
    async def scenario():
        communicator = socket()
        connected, _ = await communicator.connect(TIMEOUT)
        assert connected
        first = await communicator.receive_json_from(TIMEOUT)
        await communicator.receive_output(TIMEOUT)  # the close, which the caller has not read yet
        await communicator.send_json_to({"type": "start", "agent_id": str(agent.pk), "sdp": "v=0"})
        second = await communicator.receive_json_from(TIMEOUT)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    assert (first["code"], second["code"]) == ("not_authenticated", "not_authenticated")
    assert not Call.objects.dangerously_unscoped().exists()


def test_a_signed_in_member_calls_in_the_tenant_they_name(agent, client):
    user = factories.UserFactory(username="bob")
    factories.MembershipFactory(tenant=agent.tenant, user=user, role=Membership.Role.MEMBER)
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def scenario():
        peer = CallerPeer()
        communicator = socket([(b"cookie", cookie)], query="?tenant=acme-dental")
        answer = await start_call(communicator, agent.pk, peer)
        await communicator.send_json_to({"type": "hangup"})
        await communicator.disconnect()
        await peer.hangup()
        return answer

    answer = async_to_sync(scenario)()
    assert answer["type"] == "answer"
    call = Call.objects.dangerously_unscoped().get(pk=answer["call_id"])
    assert call.metadata["user_id"] == str(user.pk)


def test_bad_messages_and_bad_offers_get_clear_errors(agent):
    key = [(b"x-api-key", key_of(agent.tenant).encode())]
    reply, closed = refused(key, message={"type": "dance"})
    assert (reply["code"], closed["code"]) == ("invalid_request", 4400)
    reply, _ = refused(key, message={"type": "start", "agent_id": str(agent.pk)})
    assert reply["code"] == "invalid_request"
    reply, _ = refused(key, message={"type": "start", "agent_id": "not-a-uuid", "sdp": "v=0"})
    assert reply["code"] == "agent_not_found"
    reply, _ = refused(key, message={"type": "start", "agent_id": str(agent.pk), "sdp": "v=0\r\ngarbage\r\n"})
    assert reply["code"] == "invalid_sdp"
    call = Call.objects.dangerously_unscoped().get()  # the refused offer's call is ended and says why
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == ("ended", "error", "invalid_sdp")
