"""One media worker process: its calls (one asyncio task each), the PBX client, the setup sweeper.

`manage.py run_media` runs it: it takes new calls from the media workers' shared channel
(`settings.MEDIA_WORKER_CHANNEL`, any worker may take any call), subscribes to the PBX's call
events and routes them (`telephony.dispatch`). On SIGTERM it stops taking calls, lets the running
ones finish for up to `drain_seconds`, then ends the rest.
"""

import asyncio
import logging

from channels.db import database_sync_to_async

from calls import selectors as call_selectors
from calls import services as call_services
from calls.models import Call
from telephony import services
from telephony.bridge import CallBridge
from telephony.carriers.goto.client import GoToConfig, GoToConnectClient

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0


class MediaWorker:
    """The calls of this process. `bridge_options` go to every CallBridge (tests and benchmarks pass fakes)."""

    def __init__(self, *, pbx=None, bridge_options: dict | None = None):
        config = GoToConfig.from_settings()
        self.pbx = pbx if pbx is not None else (GoToConnectClient(config) if config.configured else None)
        self.bridge_options = bridge_options or {}
        self.calls: dict[str, asyncio.Task] = {}
        self.accepting = True

    # --- new calls -------------------------------------------------------------------------------

    def take_inbound(self, event: dict) -> None:
        """`call.ringing` from the PBX (the event as a dict: id, name, call_id, data, timestamp)."""
        if not self._accepting(event.get("call_id")):
            return
        self._spawn(f"pbx:{event['call_id']}", self._inbound(event))

    def take_outbound(self, *, call_id: str, tenant_id: str) -> None:
        """An outbound call the callee picked up (`call.connected` while dialling)."""
        if not self._accepting(call_id):
            return
        self._spawn(call_id, self._outbound(call_id, tenant_id))

    def _accepting(self, ref) -> bool:
        if not self.accepting:
            logger.warning("media worker is shutting down: call %s left to another worker", ref)
        return self.accepting

    def _spawn(self, key: str, coro) -> None:
        task = asyncio.create_task(coro, name=f"call-{key}")
        self.calls[key] = task
        task.add_done_callback(lambda _: self.calls.pop(key, None))

    async def _inbound(self, event: dict) -> None:
        data = event.get("data") or {}
        external_id = event.get("call_id") or data.get("call_id")
        if not external_id:  # a call we cannot name can be neither answered nor hung up
            logger.warning("PBX ringing event %s has no call id: ignored", event.get("id"))
            return
        try:
            call = await database_sync_to_async(services.inbound_call_accept)(
                external_call_id=external_id, from_number=data.get("from", ""), to_number=data.get("to", "")
            )
        except services.CallRejected as exc:
            logger.warning("inbound PBX call %s rejected (%s): %s", external_id, exc.code, exc.message)
            await self._hang_up(external_id)
            return
        if call is None:
            return  # another worker has it
        await self._run(call, detect_machine=False)

    async def _outbound(self, call_id: str, tenant_id: str) -> None:
        call = await database_sync_to_async(call_selectors.bridge_call_load)(call_id=call_id, tenant_id=tenant_id)
        if call is None:
            logger.warning("outbound call %s of tenant %s is gone", call_id, tenant_id)
            return
        await self._run(call, detect_machine=call.direction == Call.Direction.OUTBOUND)

    async def _run(self, call, *, detect_machine: bool) -> None:
        bridge = CallBridge(call, pbx=self.pbx, detect_machine=detect_machine, **self.bridge_options)
        reason = await bridge.run_pbx()
        logger.info("call %s ended: %s", call.call_id, reason)

    async def _hang_up(self, external_id: str) -> None:
        if self.pbx is None:
            return
        try:
            await self.pbx.hangup(external_id)
        except Exception:
            logger.warning("could not hang up rejected PBX call %s", external_id, exc_info=True)

    # --- housekeeping ----------------------------------------------------------------------------

    async def sweep(self) -> None:
        """End calls stuck in setup (an event lost while nobody owned the call) or left open, every 30 s."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await database_sync_to_async(call_services.calls_end_stuck)()
            except Exception:
                logger.exception("setup sweep failed")

    async def drain(self, seconds: float) -> None:
        """Stop taking calls; wait for the running ones up to `seconds`, then end them."""
        self.accepting = False
        running = list(self.calls.values())
        if running:
            logger.info("waiting up to %s s for %s calls to end", seconds, len(running))
            _, pending = await asyncio.wait(running, timeout=seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.pbx is not None:
            await self.pbx.aclose()


_current: MediaWorker | None = None


def current() -> MediaWorker:
    """This process's media worker (created on first use, e.g. under `runworker`)."""
    global _current
    if _current is None:
        _current = MediaWorker()
    return _current


def install(worker: MediaWorker | None) -> None:
    global _current
    _current = worker
