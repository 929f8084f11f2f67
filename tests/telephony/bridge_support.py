"""A media worker and a phone network for the bridge tests, all on the test's own event loop.

`Pbx` is the fake GoTo Connect plus one real aiortc `CallerPeer` per web call: for a call we place, the
peer answers our SDP offer (where GoTo answers it); for an inbound call, the peer makes the offer carried
by the `incoming` notification and takes our answer (our reading of the unverified inbound step).
`media_worker()` runs what `manage.py run_media` runs: the Channels worker on the media channel and a
`MediaWorker` serving one GoTo line (channel, subscription, device, extension) of the agent's tenant.
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
from telephony import worker as media_worker_module
from telephony.carriers.goto import api as goto_api
from telephony.carriers.goto.line import Account
from telephony.consumers import MediaWorkerConsumer
from tests.telephony.fake_goto import FakeGoTo, FakeTokens
from tests.telephony.peer import CallerPeer
from voice.engines import load_plugins

# livekit registers its plugins on the main thread only, as `run_media` does at start: the bridge's
# answering-machine check builds its VAD in a worker thread.
load_plugins()

ACCOUNT_KEY, ORGANIZATION, EXTENSION = "acct-1", "org-1", "7001"


def point_settings_at(fake: FakeGoTo, settings_fixture) -> None:
    settings_fixture.GOTO_API_BASE_URL = fake.base_url
    settings_fixture.GOTO_WEB_CALLS_BASE_URL = fake.base_url
    settings_fixture.GOTO_CLIENT_ID = "fake-client-id"
    settings_fixture.GOTO_CLIENT_SECRET = "fake-client-secret"
    # Process-wide rate buckets are keyed by account: a later test must not inherit this one's drained bucket.
    goto_api.LOCAL_LIMITER.reset()


def account_of(tenant_id) -> Account:
    return Account(
        tenant_id=str(tenant_id),
        connection_id=f"conn-{tenant_id}",
        account_key=ACCOUNT_KEY,
        organization_id=ORGANIZATION,
        extension=EXTENSION,
        line_id="line-1",
    )


class Pbx:
    """The fake PBX with a caller peer behind every web call."""

    def __init__(self, fake: FakeGoTo, *, codecs=("opus",)):
        self.fake, self.codecs = fake, codecs
        # Inbound: GoTo's offer in the `incoming` notification (False: we offer in the answer request;
        # which one GoTo does is unverified, the bridge handles both).
        self.goto_offers = True
        self.peers: dict[str, CallerPeer] = {}
        self.tokens: FakeTokens | None = None  # the line's token source, once the worker serves it
        self._answered = asyncio.Condition()
        fake.on_place_call = self._place_call
        fake.on_incoming = self._incoming
        fake.on_answer = self._answer

    async def _place_call(self, call_id: str, body: dict) -> str:
        peer = CallerPeer(codecs=self.codecs)
        self.peers[call_id] = peer
        answer = await peer.answer_offer(body["sdp"])
        await self._notify()
        return answer

    async def _incoming(self, call_id: str) -> str | None:
        peer = CallerPeer(codecs=self.codecs)
        self.peers[call_id] = peer
        return await peer.create_offer() if self.goto_offers else None

    async def _answer(self, call_id: str, body: dict) -> str | None:
        peer = self.peers[call_id]
        if self.goto_offers:
            await peer.accept_answer(body["sdp"])
            answer = None
        else:  # our offer came in the answer request: GoTo's answer goes back in its response
            answer = await peer.answer_offer(body["sdp"])
        await self._notify()
        return answer

    async def _notify(self) -> None:
        async with self._answered:
            self._answered.notify_all()

    def connected(self, call_id: str) -> bool:
        peer = self.peers.get(call_id)
        return peer is not None and peer._reader is not None

    async def answered(self, call_id: str, timeout: float = 20.0) -> CallerPeer:
        """The caller peer of `call_id` once its media is negotiated with the bridge."""
        async with asyncio.timeout(timeout), self._answered:
            await self._answered.wait_for(lambda: self.connected(call_id))
        return self.peers[call_id]

    async def aclose(self) -> None:
        for peer in self.peers.values():
            await peer.hangup()


@contextlib.asynccontextmanager
async def media_worker(fake: FakeGoTo, tenant_id, **bridge_options):
    """Run a media worker (channel worker + one GoTo line of `tenant_id`) until the block ends; yields
    (worker, line, tokens)."""
    worker = media_worker_module.MediaWorker(bridge_options=bridge_options)
    media_worker_module.install(worker)
    router = ChannelNameRouter({settings.MEDIA_WORKER_CHANNEL: MediaWorkerConsumer.as_asgi()})
    server = Worker(application=router, channels=[settings.MEDIA_WORKER_CHANNEL], channel_layer=get_channel_layer())
    tokens = FakeTokens(fake)
    task = asyncio.create_task(server.arun())
    line = worker.add_goto_line(account_of(tenant_id), tokens)
    try:
        await fake.until(lambda: fake.registered(EXTENSION) >= 1 and fake.subscribed(ACCOUNT_KEY) >= 1, 10, "a line")
        yield worker, line, tokens
    finally:
        await worker.drain(20.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        media_worker_module.install(None)


@contextlib.asynccontextmanager
async def phone_system(settings_fixture, tenant_id, **bridge_options):
    """The fake PBX (settings pointed at it) with a caller peer per call, and a media worker serving the
    tenant's GoTo line; yields (fake, pbx)."""
    async with FakeGoTo() as fake:
        fake.add_account(ACCOUNT_KEY, organization_id=ORGANIZATION, extension=EXTENSION)
        point_settings_at(fake, settings_fixture)
        pbx = Pbx(fake)
        async with media_worker(fake, tenant_id, **bridge_options) as (_worker, _line, tokens):
            pbx.tokens = tokens
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
