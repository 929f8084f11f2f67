"""A media worker and a phone network for the bridge tests, all on the test's own event loop.

`Pbx` is the fake GoToConnect plus one real aiortc `CallerPeer` per PBX call it answers (created
when the bridge asks the PBX to answer, exactly where the PBX would produce its SDP offer).
`media_worker()` runs what `manage.py run_media` runs: the Channels worker on the media channel,
the GoToConnect event subscription routed by `telephony.dispatch`, and a `MediaWorker`.
"""

import asyncio
import contextlib
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker
from django.conf import settings

from calls.models import Call
from telephony import dispatch
from telephony import worker as media_worker_module
from telephony.carriers.goto import client as goto_client
from telephony.carriers.goto.client import GoToConfig
from telephony.carriers.goto.events import EventSubscriber
from telephony.consumers import MediaWorkerConsumer
from tests.telephony.fake_goto import FakeGoTo
from tests.telephony.peer import CallerPeer


def point_settings_at(fake: FakeGoTo, settings_fixture) -> None:
    settings_fixture.GOTO_API_BASE_URL = fake.api_base_url
    settings_fixture.GOTO_WEBSOCKET_URL = fake.websocket_url
    settings_fixture.GOTO_OAUTH_TOKEN_URL = fake.token_url
    settings_fixture.GOTO_CLIENT_ID = fake.client_id
    settings_fixture.GOTO_CLIENT_SECRET = fake.client_secret
    # Process-wide token cache and rate buckets are keyed by token URL: a port reused by a later fake
    # must not inherit this one's tokens or drained bucket.
    goto_client.TOKENS.clear()
    goto_client.LOCAL_LIMITER.reset()


class Pbx:
    """The fake PBX with a caller peer behind every call it is asked to answer."""

    def __init__(self, fake: FakeGoTo, *, codecs=("opus",)):
        self.fake, self.codecs = fake, codecs
        self.peers: dict[str, CallerPeer] = {}
        self.offers: dict[str, str] = {}
        self._answered = asyncio.Condition()
        fake.on_answer = self._answer
        fake.on_sdp_answer = self._sdp_answer

    async def _answer(self, call_id: str) -> str:
        peer = CallerPeer(codecs=self.codecs)
        self.peers[call_id] = peer
        return await peer.create_offer()

    async def _sdp_answer(self, call_id: str, sdp: str) -> None:
        await self.peers[call_id].accept_answer(sdp)
        async with self._answered:
            self._answered.notify_all()

    async def answered(self, call_id: str, timeout: float = 20.0) -> CallerPeer:
        """The caller peer of `call_id` once the bridge has answered it."""
        async with asyncio.timeout(timeout), self._answered:
            await self._answered.wait_for(lambda: call_id in self.fake.sdp_answers and call_id in self.peers)
        return self.peers[call_id]

    async def aclose(self) -> None:
        for peer in self.peers.values():
            await peer.hangup()


@contextlib.asynccontextmanager
async def media_worker(**bridge_options):
    """Run a media worker (channel worker + PBX events + MediaWorker) until the block ends."""
    worker = media_worker_module.MediaWorker(bridge_options=bridge_options)
    media_worker_module.install(worker)
    router = ChannelNameRouter({settings.MEDIA_WORKER_CHANNEL: MediaWorkerConsumer.as_asgi()})
    server = Worker(application=router, channels=[settings.MEDIA_WORKER_CHANNEL], channel_layer=get_channel_layer())
    subscriber = EventSubscriber(GoToConfig.from_settings(), dispatch.handle_pbx_event)
    tasks = [asyncio.create_task(server.arun()), asyncio.create_task(subscriber.run())]
    try:
        yield worker
    finally:
        await subscriber.stop()
        await worker.drain(20.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        media_worker_module.install(None)


@contextlib.asynccontextmanager
async def phone_system(settings_fixture, **bridge_options):
    """The fake PBX (settings pointed at it) with a caller peer per answered call, and a media worker
    subscribed to its events; yields (fake, pbx)."""
    async with FakeGoTo() as fake:
        point_settings_at(fake, settings_fixture)
        pbx = Pbx(fake)
        async with media_worker(**bridge_options):
            await fake.await_subscribers(1)
            try:
                yield fake, pbx
            finally:
                await pbx.aclose()


async def wait_quiet(peer: CallerPeer, *, quiet: float = 1.2, timeout: float = 60.0) -> None:
    """Until the caller has heard nothing new for `quiet` seconds (the agent finished speaking)."""
    deadline = time.monotonic() + timeout
    last, since = peer.heard_seconds, time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "the agent never stopped talking"
        await asyncio.sleep(0.1)
        if peer.heard_seconds != last:
            last, since = peer.heard_seconds, time.monotonic()


@database_sync_to_async
def _call_where(**lookup):
    return Call.objects.dangerously_unscoped().filter(**lookup).first()


async def wait_for_call(timeout: float = 20.0, **lookup) -> Call:
    """The call matching `lookup` once it exists (e.g. status="ended", external_call_id=...)."""
    deadline = time.monotonic() + timeout
    while True:
        call = await _call_where(**lookup)
        if call is not None:
            return call
        assert time.monotonic() < deadline, f"no call with {lookup}"
        await asyncio.sleep(0.1)
