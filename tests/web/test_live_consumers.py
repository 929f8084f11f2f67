"""The live call websockets, driven through the real ASGI application with Channels' communicator.

Authentication (session cookie or API key), tenant scoping (another tenant's call is refused like a
missing one), catch-up after a reconnect without losing or doubling an event, interim text, and a
supervisor's end / transfer.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from calls import services
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus
from core import events
from tenants.models import AuditLog, Membership
from tenants.services import api_key_create, api_key_revoke
from tests import factories
from voiceapp.asgi import application

TIMEOUT = 5


@pytest.fixture
def tenant(transactional_db):
    return factories.TenantFactory(name="Acme Dental", slug="acme-dental")


@pytest.fixture
def other_tenant(transactional_db):
    return factories.TenantFactory(name="Globex Clinic", slug="globex-clinic")


def session_cookie(tenant, role=Membership.Role.OWNER, username="alice") -> bytes:
    user = factories.UserFactory(username=username)
    factories.MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def live_call(tenant, **kwargs) -> Call:
    agent = factories.AgentFactory(tenant=tenant, name="Receptionist")
    return factories.CallFactory(tenant=tenant, agent=agent, status=CallStatus.CONVERSING, **kwargs)


def socket(path: str, *, cookie: bytes | None = None, key: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    if key:
        headers.append((b"x-api-key", key.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_until(communicator, kind: str) -> list[dict]:
    seen = [await communicator.receive_json_from(TIMEOUT)]
    while seen[-1]["type"] != kind:
        seen.append(await communicator.receive_json_from(TIMEOUT))
    return seen


record = database_sync_to_async(
    lambda call, event_type, **payload: services.call_event_record(call=call, event_type=event_type, payload=payload)
)


def sequences(messages: list[dict]) -> list[int]:
    return [m["sequence"] for m in messages if m["type"] == "event"]


# --- authentication and scoping ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws/v1/live", "/ws/v1/live/calls/00000000-0000-0000-0000-000000000001"])
def test_an_anonymous_socket_is_refused(tenant, path):
    async def scenario():
        communicator = socket(path)
        connected, _ = await communicator.connect(TIMEOUT)
        assert connected
        refusal = await communicator.receive_json_from(TIMEOUT)
        closed = await communicator.receive_output(TIMEOUT)
        return refusal, closed

    refusal, closed = async_to_sync(scenario)()
    assert refusal == {"type": "error", "code": "not_authenticated", "message": "Sign in, or send an X-API-Key header."}
    assert closed == {"type": "websocket.close", "code": 4401}


def test_a_revoked_api_key_is_refused(tenant):
    created = api_key_create(tenant=tenant, name="viewer", scopes=["read"])
    api_key_revoke(api_key=created.api_key)

    async def scenario():
        communicator = socket("/ws/v1/live", key=created.secret)
        await communicator.connect(TIMEOUT)
        return await communicator.receive_json_from(TIMEOUT), await communicator.receive_output(TIMEOUT)

    refusal, closed = async_to_sync(scenario)()
    assert refusal["type"] == "error" and closed["code"] == 4401


def test_another_tenants_call_is_refused_like_a_missing_one(tenant, other_tenant):
    theirs = live_call(other_tenant)
    cookie = session_cookie(tenant)
    key = api_key_create(tenant=tenant, name="live", scopes=["read"]).secret

    async def scenario(**auth):
        communicator = socket(f"/ws/v1/live/calls/{theirs.pk}", **auth)
        await communicator.connect(TIMEOUT)
        return await communicator.receive_json_from(TIMEOUT), await communicator.receive_output(TIMEOUT)

    for auth in ({"cookie": cookie}, {"key": key}):
        refusal, closed = async_to_sync(scenario)(**auth)
        assert refusal == {"type": "error", "code": "call_not_found", "message": "No such call."}
        assert closed == {"type": "websocket.close", "code": 4404}


def test_the_tenant_socket_lists_only_our_active_calls_and_follows_them(tenant, other_tenant):
    ours = live_call(tenant, from_number="+15550100002")
    ended = factories.CallFactory(tenant=tenant, agent=ours.agent)
    Call.objects.dangerously_unscoped().filter(pk=ended.pk).update(
        status=CallStatus.ENDED, ended_at=ended.started_at, duration_seconds=0
    )
    theirs = live_call(other_tenant)
    cookie = session_cookie(tenant)

    async def scenario():
        communicator = socket("/ws/v1/live", cookie=cookie)
        await communicator.connect(TIMEOUT)
        snapshot = await communicator.receive_json_from(TIMEOUT)
        await record(theirs, CallEvent.Type.CALL_STATUS_CHANGED, call_id=str(theirs.pk))  # not ours: never sent
        await database_sync_to_async(services.call_transition)(
            call=ours, to_status=CallStatus.ENDED, end_reason="caller_hangup"
        )
        update = await communicator.receive_json_from(TIMEOUT)
        nothing_else = await communicator.receive_nothing(0.3)
        await communicator.disconnect()
        return snapshot, update, nothing_else

    snapshot, update, nothing_else = async_to_sync(scenario)()
    assert snapshot["type"] == "snapshot"
    assert [c["id"] for c in snapshot["calls"]] == [str(ours.pk)]
    assert snapshot["calls"][0]["from_number"] == "+15550100002"
    assert snapshot["calls"][0]["agent_name"] == "Receptionist"
    assert update["type"] == "call" and update["event"] == "call.ended"
    assert update["call"]["id"] == str(ours.pk) and update["call"]["status"] == "ended"
    assert update["call"]["end_reason"] == "caller_hangup"
    assert nothing_else


# --- one call: catch-up, live events, interim text ------------------------------------------------


def test_reconnecting_catches_up_without_losing_or_doubling_events(tenant):
    call = live_call(tenant)
    for n in (1, 2, 3):
        services.call_event_record(
            call=call, event_type=CallEvent.Type.TRANSCRIPT_TURN, payload={"turn_number": n, "text": f"turn {n}"}
        )
    cookie = session_cookie(tenant)
    layer = get_channel_layer()

    async def first_visit():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}?after=0", cookie=cookie)
        await communicator.connect(TIMEOUT)
        caught_up = await receive_until(communicator, "caught_up")
        await record(call, CallEvent.Type.TRANSCRIPT_TURN, turn_number=4, text="turn 4")
        live = await communicator.receive_json_from(TIMEOUT)
        await communicator.disconnect()
        return caught_up, live

    caught_up, live = async_to_sync(first_visit)()
    assert caught_up[0]["type"] == "call" and caught_up[0]["call"]["id"] == str(call.pk)
    assert sequences(caught_up) == [1, 2, 3]
    assert [m["data"]["text"] for m in caught_up if m["type"] == "event"] == ["turn 1", "turn 2", "turn 3"]
    assert caught_up[-1] == {"type": "caught_up", "sequence": 3}
    assert (live["sequence"], live["data"]["text"]) == (4, "turn 4")

    # While nobody watches, two more turns are stored.
    for n in (5, 6):
        services.call_event_record(call=call, event_type=CallEvent.Type.TRANSCRIPT_TURN, payload={"turn_number": n})

    async def second_visit():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}?after=4", cookie=cookie)
        await communicator.connect(TIMEOUT)
        caught_up = await receive_until(communicator, "caught_up")
        group = events.call_group(call.pk)
        # A late duplicate of an event already sent is dropped ...
        await layer.group_send(group, events.message("transcript.turn", {"turn_number": 6}, sequence=6))
        # ... interim text (no sequence) goes straight through ...
        partial = {"call_id": str(call.pk), "speaker": "caller", "text": "when are", "is_final": False}
        await events.apublish_transient("transcript.partial", partial, call_id=call.pk)
        interim = await communicator.receive_json_from(TIMEOUT)
        # ... and a push that was lost (7 stored, never published) is filled in before 8.
        await database_sync_to_async(
            lambda: CallEvent.objects.create(
                tenant=tenant, call=call, sequence=7, event_type="transcript.turn", payload={"turn_number": 7},
                occurred_at=call.created_at,
            )
        )()  # fmt: skip
        await record(call, CallEvent.Type.TRANSCRIPT_TURN, turn_number=8)
        filled = [await communicator.receive_json_from(TIMEOUT), await communicator.receive_json_from(TIMEOUT)]
        nothing_else = await communicator.receive_nothing(0.3)
        await communicator.disconnect()
        return caught_up, interim, filled, nothing_else

    caught_up, interim, filled, nothing_else = async_to_sync(second_visit)()
    assert sequences(caught_up) == [5, 6]
    assert caught_up[-1] == {"type": "caught_up", "sequence": 6}
    assert interim["event"] == "transcript.partial" and interim["sequence"] is None
    assert interim["data"]["text"] == "when are"
    assert sequences(filled) == [7, 8]
    assert nothing_else


def test_a_bad_after_is_refused(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant)

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}?after=soon", cookie=cookie)
        await communicator.connect(TIMEOUT)
        return await communicator.receive_json_from(TIMEOUT), await communicator.receive_output(TIMEOUT)

    refusal, closed = async_to_sync(scenario)()
    assert refusal["code"] == "invalid_after" and closed["code"] == 4400


# --- supervisor actions ---------------------------------------------------------------------------


def test_a_supervisor_ends_a_call_through_its_bridge(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant, role=Membership.Role.MEMBER, username="carol")
    layer = get_channel_layer()

    async def scenario():
        bridge = await layer.new_channel()  # stands in for the bridge running the call
        await layer.group_add(events.call_group(call.pk), bridge)
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        await communicator.send_json_to({"type": "end"})
        ack = await communicator.receive_json_from(TIMEOUT)
        told = await layer.receive(bridge)
        await communicator.disconnect()
        return ack, told

    ack, told = async_to_sync(scenario)()
    assert ack == {"type": "ack", "action": "end"}
    assert told == {"type": "bridge.hangup"}
    audit = AuditLog.objects.for_tenant(tenant).get(action="call.end")
    assert (audit.object_id, audit.actor_label) == (str(call.pk), "carol")


def test_a_viewer_can_watch_but_not_end_or_transfer(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant, role=Membership.Role.VIEWER, username="victor")

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        replies = []
        for action in ({"type": "end"}, {"type": "transfer", "transfer_type": "blind", "target": "+15550100999"}):
            await communicator.send_json_to(action)
            replies.append(await communicator.receive_json_from(TIMEOUT))
        await communicator.disconnect()
        return replies

    replies = async_to_sync(scenario)()
    assert [r["code"] for r in replies] == ["permission_denied", "permission_denied"]
    call.refresh_from_db()
    assert call.status == CallStatus.CONVERSING
    assert not AuditLog.objects.for_tenant(tenant).filter(action__in=["call.end", "call.transfer"]).exists()
    assert (
        not CallEvent.objects.dangerously_unscoped()
        .filter(call=call, event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED)
        .exists()
    )


def test_a_supervisor_transfers_a_call_and_bad_input_is_a_clear_error(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant)

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        replies = []
        for action in (
            {"type": "transfer", "transfer": {"type": "blind", "target": ""}},
            {"type": "transfer", "transfer": {"type": "sideways", "target": "+15550100999"}},
            {"type": "transfer", "transfer": "blind"},
            {"type": "transfer", "transfer": {"type": "blind", "target": "+15550100999", "context": "VIP"}},
        ):
            await communicator.send_json_to(action)
            replies.append(await communicator.receive_json_from(TIMEOUT))
        pushed = [await communicator.receive_json_from(TIMEOUT), await communicator.receive_json_from(TIMEOUT)]
        await communicator.disconnect()
        return replies, pushed

    replies, (status_changed, requested) = async_to_sync(scenario)()
    assert replies[0]["code"] == "invalid_request" and replies[0]["fields"] == {"target": ["Required."]}
    assert replies[1]["code"] == "invalid_transfer_type"
    assert replies[2]["code"] == "invalid_request" and replies[2]["fields"] == {"transfer": ["Must be an object."]}
    assert replies[3] == {"type": "ack", "action": "transfer"}
    call.refresh_from_db()
    assert call.status == CallStatus.TRANSFERRING
    assert status_changed["event"] == "call.status_changed" and status_changed["data"]["to_status"] == "transferring"
    assert requested["event"] == "call.transfer_requested"
    assert requested["data"]["target"] == "+15550100999" and requested["data"]["reason"] == "supervisor"


def test_ending_a_call_that_has_ended_is_a_conflict(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant)
    services.call_transition(call=call, to_status=CallStatus.ENDED, end_reason="caller_hangup")

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        await communicator.send_json_to({"type": "end"})
        reply = await communicator.receive_json_from(TIMEOUT)
        await communicator.disconnect()
        return reply

    assert async_to_sync(scenario)()["code"] == "call_not_active"
    assert not AuditLog.objects.for_tenant(tenant).filter(action="call.end").exists()


def test_the_older_flat_transfer_message_is_still_accepted(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant)

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        await communicator.send_json_to({"type": "transfer", "transfer_type": "warm", "target": "+15550100999"})
        reply = await receive_until(communicator, "ack")
        await communicator.disconnect()
        return reply[-1]

    assert async_to_sync(scenario)() == {"type": "ack", "action": "transfer"}
    call.refresh_from_db()
    assert call.status == CallStatus.TRANSFERRING
    requested = CallEvent.objects.dangerously_unscoped().get(
        call=call, event_type=CallEvent.Type.CALL_TRANSFER_REQUESTED
    )
    assert requested.payload["type"] == "warm"


def test_transferring_a_call_twice_is_refused_in_words_not_an_enum_name(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant)
    services.call_transfer_request(call=call, transfer_type="blind", target="+15550100999")

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        await communicator.send_json_to({"type": "transfer", "transfer": {"type": "blind", "target": "+15550100998"}})
        reply = await receive_until(communicator, "error")
        await communicator.disconnect()
        return reply[-1]

    reply = async_to_sync(scenario)()
    assert reply["code"] == "invalid_call_transition"
    assert reply["message"] == "A call cannot go from “Transferring” to “Transferring”."


def test_json_nested_too_deep_is_an_error_message_and_the_socket_stays_open(tenant):
    call = live_call(tenant)
    cookie = session_cookie(tenant, role=Membership.Role.MEMBER, username="dora")

    async def scenario():
        communicator = socket(f"/ws/v1/live/calls/{call.pk}", cookie=cookie)
        await communicator.connect(TIMEOUT)
        await receive_until(communicator, "caught_up")
        await communicator.send_to(text_data='{"type": ' + "[" * 100_000 + "]" * 100_000 + "}")
        refusal = await communicator.receive_json_from(TIMEOUT)
        await communicator.send_to(text_data='{"type": "nothing", "x": "\\u0000"}')
        second = await communicator.receive_json_from(TIMEOUT)
        await communicator.disconnect()
        return refusal, second

    refusal, second = async_to_sync(scenario)()
    assert refusal["type"] == "error" and second["type"] == "error"
