"""The LiveKit room path up to the SDK calls, the media worker's setup sweeper and its command."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import jwt
import pytest
from aiohttp import web
from asgiref.sync import async_to_sync
from django.utils import timezone
from livekit import rtc
from livekit.protocol import models as lk_models
from livekit.protocol import room as lk_room

from calls import services as call_services
from calls.models import Call
from calls.selectors import BridgeCall
from telephony import rooms
from tests import factories
from tests.telephony.bridge_support import phone_system, wait_for_call

BRIDGE_CALL = BridgeCall(
    call_id="c1", tenant_id="t1", agent_id="a1", agent_name="Receptionist", direction="inbound", room_name="call-t1-c1"
)


class FakeRoomService:
    """LiveKit's room service (Twirp over HTTP with protobuf bodies) on 127.0.0.1."""

    def __init__(self):
        self.calls: list[tuple[str, object, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.read()
        claims = jwt.decode(
            request.headers["Authorization"].split()[1], "s" * 32, algorithms=["HS256"], options={"verify_aud": False}
        )
        if method == "CreateRoom":
            message = lk_room.CreateRoomRequest.FromString(body)
            reply = lk_models.Room(name=message.name, sid="RM_1")
        elif method == "DeleteRoom":
            message = lk_room.DeleteRoomRequest.FromString(body)
            reply = lk_room.DeleteRoomResponse()
        else:
            return web.Response(status=404)
        self.calls.append((method, message, claims))
        return web.Response(body=reply.SerializeToString(), content_type="application/protobuf")


def test_the_room_is_created_and_deleted_through_livekits_room_service(settings):
    service = FakeRoomService()

    async def scenario():
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/{method}", service.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        settings.LIVEKIT_URL = f"ws://127.0.0.1:{port}"
        settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = "APIkey", "s" * 32
        try:
            room = await rooms.open_room(BRIDGE_CALL)
            await room.aclose()
        finally:
            await runner.cleanup()
        return room

    room = async_to_sync(scenario)()
    assert isinstance(room, rooms.LiveKitRoom)
    (create, created, claims), (delete, deleted, _) = service.calls
    assert (create, created.name, created.empty_timeout) == (
        "CreateRoom",
        "call-t1-c1",
        rooms.ROOM_EMPTY_TIMEOUT_SECONDS,
    )
    assert (delete, deleted.room) == ("DeleteRoom", "call-t1-c1")
    assert claims["iss"] == "APIkey" and claims["video"]["roomCreate"] is True


def test_without_livekit_the_in_process_link_is_used(settings):
    settings.LIVEKIT_URL = ""
    assert async_to_sync(rooms.open_room)(BRIDGE_CALL) is None


def test_the_phone_leg_joins_the_room_as_the_caller(settings, monkeypatch):
    settings.LIVEKIT_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = "wss://lk.example", "APIkey", "s" * 32
    joined, published, handlers = {}, [], {}

    class Participant:
        async def publish_track(self, track, options=None):
            published.append((track, options))

    class Room:
        local_participant = Participant()

        def on(self, name, handler):
            handlers[name] = handler

    async def connect_room(**kwargs):
        joined.update(kwargs)
        return Room()

    monkeypatch.setattr(rooms.io, "connect_room", connect_room)

    async def scenario():
        room = rooms.LiveKitRoom(BRIDGE_CALL)
        sink = await room.link(leg=None)
        sink(rtc.AudioFrame(b"\0\0" * 960, 48000, 1, 960))
        for task in room._tasks:
            task.cancel()

    async_to_sync(scenario)()
    assert (joined["identity"], joined["room_name"], joined["url"]) == ("caller-c1", "call-t1-c1", "wss://lk.example")
    [(_track, options)] = published
    assert options.source == rtc.TrackSource.SOURCE_MICROPHONE
    assert "track_subscribed" in handlers  # the agent's audio is played back into the phone leg


def test_calls_stuck_in_setup_are_ended_by_the_sweeper(tenant, settings):
    settings.CALL_SETUP_TIMEOUT_SECONDS = 30
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    old = factories.CallFactory(tenant=tenant, direction="outbound", started_at=five_minutes_ago)
    Call.objects.dangerously_unscoped().filter(pk=old.pk).update(status="dialing", dialed_at=five_minutes_ago)
    # Created as long ago, but dialled just now (its dial task was late): its setup time runs from the dial.
    fresh = factories.CallFactory(tenant=tenant, direction="outbound", started_at=five_minutes_ago)
    Call.objects.dangerously_unscoped().filter(pk=fresh.pk).update(status="dialing", dialed_at=timezone.now())
    assert call_services.calls_end_stuck() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.end_reason) == ("ended", "setup_timeout")
    assert fresh.status == "dialing"


def test_an_incoming_notification_without_a_call_id_starts_no_call(transactional_db, settings):
    tenant = factories.TenantFactory(slug="acme")
    factories.SubscriptionFactory(tenant=tenant)
    agent = factories.AgentFactory(tenant=tenant)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15559876543")
    content = {"caller": {"number": "+15550100"}, "callee": {"number": "+15559876543"}}  # no callId, no id

    async def scenario():
        async with phone_system(settings, tenant.pk) as (fake, _pbx):
            fake._in_loop(fake._broadcast, {"source": "WebRTC", "type": "incoming", "content": content}, None)
            good = fake.ring(to="+15559876543")  # the next call is answered: the bad one was ignored
            await fake.await_request(rf"/{good}/answer$", method="POST")
            return fake

    fake = async_to_sync(scenario)()
    assert [c.external_call_id for c in Call.objects.dangerously_unscoped().all()] == [
        next(iter(fake.calls)),
    ]


def test_a_channel_socket_cut_mid_call_loses_no_state(transactional_db, settings):
    """The hang-up GoTo reports while our channel is down is fetched from the conversation space afterwards."""
    from tests.telephony.test_bridge_calls import fast_bridge
    from tests.voice.session_support import make_agent

    tenant = factories.TenantFactory(slug="acme")
    factories.SubscriptionFactory(tenant=tenant)
    agent = make_agent(tenant, tools=[])
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15559876543")

    async def scenario():
        async with phone_system(settings, tenant.pk, **fast_bridge()) as (fake, pbx):
            external_id = fake.ring(to="+15559876543")
            await pbx.answered(external_id)
            await wait_for_call(external_call_id=external_id, status="conversing")
            channels_before = len(fake.channels)
            fake.drop_sockets()
            fake.hangup_remote(external_id)  # nobody listens right now
            call = await wait_for_call(external_call_id=external_id, status="ended", timeout=30)
            await pbx.aclose()
            return call, fake, channels_before

    call, fake, channels_before = async_to_sync(scenario)()
    assert call.end_reason == "caller_hangup"
    assert len(fake.channels) == channels_before + 1  # a new channel, subscription and device
    assert len(fake.requests_to(r"/call-events/v1/subscriptions$", method="POST")) == 2
    assert len(fake.requests_to(r"/web-calls/v1/devices$", method="POST")) == 2
    deletes = [r.status for r in fake.requests_to(r"/web-calls/v1/devices/[^/]+$", method="DELETE")]
    assert deletes == [204, 204]  # the device, before it is registered on the new channel, and at shutdown
    assert fake.requests_to(r"/conversation-spaces/.+/events$", method="GET")  # the missed state, recovered


@pytest.mark.slow
def test_run_media_starts_and_stops_cleanly():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "voiceapp.settings", "GOTO_CLIENT_ID": "", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_media", "--drain", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline, lines = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Media worker on channel" in line or not line:
                break
        assert any("Media worker on channel 'telephony.bridge'" in line for line in lines), lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        process.kill()
