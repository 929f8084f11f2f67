"""The media worker: takes calls from the PBX and the API, runs the bridge and the agent sessions.

    python manage.py run_media

One asyncio loop: the Channels worker on the media workers' shared channel
(`settings.MEDIA_WORKER_CHANNEL`), one GoTo line per connected GoTo account (notification channel,
call-events subscription, web-calls device; its call states routed by `telephony.dispatch`), and the
setup sweeper, which also picks up accounts connected since. Run as many as you need (an inbound call is
answered by the first worker to claim it; call states are de-duplicated in Redis).
SIGTERM or Ctrl-C stops taking calls and lets running calls finish (up to --drain seconds).
"""

import asyncio
import contextlib
import logging
import signal

from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker
from django.conf import settings
from django.core.management.base import BaseCommand

from core import events
from telephony import worker as media_worker
from telephony.consumers import MediaWorkerConsumer
from voice.engines import load_plugins
from voice.session import prepare_worker

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a media worker: PBX events, the WebRTC bridge and agent sessions (one asyncio task per call)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--drain", type=float, default=600.0, help="Seconds running calls may take to finish on shutdown."
        )

    def handle(self, *args, drain: float, **options):
        load_plugins()  # the sessions' livekit plugins, registered on the main thread before any call
        asyncio.run(self._main(drain))

    async def _main(self, drain: float) -> None:
        layer = get_channel_layer()
        worker = media_worker.MediaWorker(line_state=_announce_subscription)
        media_worker.install(worker)
        router = ChannelNameRouter({settings.MEDIA_WORKER_CHANNEL: MediaWorkerConsumer.as_asgi()})
        server = Worker(application=router, channels=[settings.MEDIA_WORKER_CHANNEL], channel_layer=layer)
        prepare_worker()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(server.arun(), name="channel-worker"), asyncio.create_task(worker.sweep())]
        try:
            await worker.start_goto()
        except Exception:  # the database is down at start: the sweep tries again
            logger.exception("GoTo lines could not be started")
        if not worker.lines:
            self.stderr.write("No GoTo account is connected: taking browser/API calls only (the sweep looks again).")
        await events.apublish_system("media_worker.started", {"channel": settings.MEDIA_WORKER_CHANNEL})
        self.stdout.write(f"Media worker on channel {settings.MEDIA_WORKER_CHANNEL!r}; Ctrl-C to stop.")
        await stop.wait()
        self.stdout.write("Stopping: no new calls; waiting for running calls to end.")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await worker.drain(drain)
        with contextlib.suppress(Exception):
            await events.apublish_system("media_worker.stopped", {"channel": settings.MEDIA_WORKER_CHANNEL})


def _announce_subscription(live: bool) -> None:
    """Tell the `system` group when one of this worker's GoTo notification channels comes up or goes down."""
    name = "pbx.events_connected" if live else "pbx.events_disconnected"
    task = asyncio.ensure_future(events.apublish_system(name, {"channel": settings.MEDIA_WORKER_CHANNEL}))
    _announcements.add(task)
    task.add_done_callback(_announcements.discard)


_announcements: set[asyncio.Task] = set()
