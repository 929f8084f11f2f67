"""The LiveKit room path, up to the SDK calls (no LiveKit server can run here)."""

import jwt

from tests.voice.session_fakes import Reply
from tests.voice.session_support import agent_fixture, call_fixture, fake_models, run  # noqa: F401
from voice import io
from voice import session as runtime_session
from voice.session import RoomMedia, create_call_session, livekit_configured, room_media


def test_the_room_path_is_chosen_by_livekit_url(settings):
    settings.LIVEKIT_URL = ""
    assert not livekit_configured()
    settings.LIVEKIT_URL = "wss://livekit.example.com"
    assert livekit_configured()


def test_joins_the_calls_room_as_the_agent(settings, monkeypatch):
    settings.LIVEKIT_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = "wss://lk.example", "APIkey", "s" * 32
    joined = {}

    async def connect(room, url, token, options=None):
        joined.update(url=url, token=token)

    monkeypatch.setattr(io.rtc.Room, "connect", connect)
    media = run(room_media, call_id="c1", room_name="call-t1-c1", caller_identity="caller-c1")

    assert isinstance(media, RoomMedia) and media.caller_identity == "caller-c1"
    assert joined["url"] == "wss://lk.example"
    claims = jwt.decode(joined["token"], "s" * 32, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["iss"] == "APIkey"
    assert claims["sub"] == "agent-c1"
    assert claims["kind"] == "agent"
    assert {k: claims["video"][k] for k in ("roomJoin", "room", "canPublish", "canSubscribe")} == {
        "roomJoin": True,
        "room": "call-t1-c1",
        "canPublish": True,
        "canSubscribe": True,
    }


def test_room_options_listen_to_the_caller():
    options = io.room_options(caller_identity="caller-c1")
    assert options.participant_identity == "caller-c1"
    assert options.close_on_disconnect is True


def test_the_session_starts_on_the_room(call, monkeypatch):
    started = {}

    async def start(self, agent, **kwargs):
        started.update(kwargs, agent=agent)

    monkeypatch.setattr(runtime_session.AgentSession, "start", start)
    room = object()

    async def scenario():
        media = RoomMedia(room=room, caller_identity="caller-1")
        session = await create_call_session(
            tenant_id=call.tenant_id, call_id=call.pk, media=media, models=fake_models(lambda c: Reply("hi"), [])
        )
        await session._start_session()
        return session

    session = run(scenario)
    assert started["room"] is room
    assert started["room_options"].participant_identity == "caller-1"
    assert started["record"] is False
    assert started["agent"] is session.agent
    assert session.session.input.audio is None  # RoomIO, not the in-process link, feeds the session
