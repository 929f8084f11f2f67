"""One media worker process: its calls (one asyncio task each), its GoTo lines, the setup sweeper.

`manage.py run_media` runs it: it takes work from the media workers' shared channel
(`settings.MEDIA_WORKER_CHANNEL`, any worker may take any message: an outbound GoTo dial, a hang-up),
and keeps one `GoToLine` per connected GoTo account (notification channel, call-events subscription,
web-calls device and extension). An inbound GoTo call rings every worker's device: the first worker to
claim it answers it. On SIGTERM the worker stops taking calls, lets the running ones finish for up to
`drain_seconds`, then ends the rest.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from calls import services as call_services
from calls.selectors import BridgeCall
from core.errors import ApplicationError
from telephony import dispatch, selectors, services
from telephony.bridge import CallBridge
from telephony.carriers.goto import grant, inbound
from telephony.carriers.goto.api import ApiConfig, GoToApi, TokenSource
from telephony.carriers.goto.callstate import EventDeduplicator, SharedStore
from telephony.carriers.goto.channel import RECONNECT_REQUIRED
from telephony.carriers.goto.line import Account, GoToLine
from telephony.models import PhoneNumber

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0


class MediaWorker:
    """The calls of this process. `bridge_options` go to every CallBridge (tests and benchmarks pass fakes)."""

    def __init__(
        self,
        *,
        bridge_options: dict | None = None,
        worker_id: str | None = None,
        line_state: Callable[[bool], None] | None = None,
    ):
        self.bridge_options = bridge_options or {}
        self.line_state = line_state  # told True/False as a GoTo line's notification channel comes up or goes down
        self.worker_id = worker_id or uuid.uuid4().hex[:8]
        self.calls: dict[str, asyncio.Task] = {}
        self.accepting = True
        self.lines: dict[str, GoToLine] = {}  # by GoTo connection id
        self._line_tasks: dict[str, asyncio.Task] = {}
        self._dial_listener: asyncio.Task | None = None
        self._states_dedup = EventDeduplicator(key_prefix="goto:state")
        self._ringing_claims = EventDeduplicator(key_prefix="goto:incoming")
        self._store = SharedStore()

    # --- GoTo lines --------------------------------------------------------------------------------

    def add_goto_line(
        self, account: Account, tokens: TokenSource, *, api_options: dict | None = None, listener_options=None
    ) -> GoToLine:
        """Serve one connected GoTo account from this worker (its channel, device and calls)."""
        from django.conf import settings

        api = GoToApi(ApiConfig.from_settings(), tokens=tokens, account_key=account.account_key, **(api_options or {}))
        line = GoToLine(
            account,
            api,
            worker_id=self.worker_id,
            emit=dispatch.report,
            on_incoming=self._on_incoming,
            dedup=self._states_dedup,
            store=self._store,
            ttl_seconds=settings.GOTO_EVENT_DEDUP_SECONDS,
            listener_options={"on_state": self.line_state, **(listener_options or {})},
        )
        self.lines[account.connection_id] = line
        if self._dial_listener is None:
            self._dial_listener = asyncio.create_task(self._listen_dials(), name="goto-dials")
        task = asyncio.create_task(line.run(), name=f"goto-line-{account.connection_id}")
        self._line_tasks[account.connection_id] = task
        return line

    async def start_goto(self) -> None:
        """Serve every connected GoTo account not served yet, and stop serving the disconnected ones."""
        accounts = await database_sync_to_async(grant.connected_accounts)()
        current = {a.connection_id: a for a in accounts}
        for connection_id in [c for c in self.lines if c not in current]:
            await self._remove_line(connection_id)
        for connection_id, found in current.items():
            running = self._line_tasks.get(connection_id)
            if running is not None and not running.done():
                continue
            if running is not None:  # its listener stopped (a revoked grant): served again once reconnected
                await self._remove_line(connection_id)
            account = Account(
                tenant_id=found.tenant_id,
                connection_id=found.connection_id,
                account_key=found.account_key,
                organization_id=found.organization_id,
                extension=found.extension,
                line_id=found.line_id,
            )
            self.add_goto_line(account, grant.tokens_for(connection_id))

    async def _remove_line(self, connection_id: str) -> None:
        line, task = self.lines.pop(connection_id, None), self._line_tasks.pop(connection_id, None)
        if line is not None:
            await line.shutdown()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def line_for(self, tenant_id: str) -> GoToLine | None:
        """The tenant's GoTo line in this worker (a tenant connects one GoTo account)."""
        return next((line for line in self.lines.values() if line.account.tenant_id == str(tenant_id)), None)

    # --- new calls -------------------------------------------------------------------------------

    async def _on_incoming(self, line: GoToLine, incoming: inbound.Incoming) -> None:
        """A web call rings on this worker's device (and on every other worker's): the first claim answers."""
        if not self._accepting(incoming.call_id) or await self._ringing_claims.seen(incoming.call_id):
            return  # another worker's (or an announcement repeated): the line forgets it in time
        self._spawn(f"goto:{incoming.call_id}", self._inbound(line, incoming))

    async def _inbound(self, line: GoToLine, incoming: inbound.Incoming) -> None:
        to_number = incoming.to_number
        if not to_number:  # the notification names no dialled number (its content is unverified): the
            # line's tenant answers on its one GoTo number, if it has exactly one
            to_number = await database_sync_to_async(selectors.sole_active_number)(
                tenant_id=line.account.tenant_id, provider=PhoneNumber.Provider.GOTOCONNECT
            )
        try:
            call = await database_sync_to_async(services.inbound_call_accept)(
                external_call_id=incoming.call_id,
                from_number=incoming.from_number,
                to_number=to_number,
                tenant_id=line.account.tenant_id,
            )
        except services.CallRejected as exc:
            logger.warning("inbound GoTo call %s rejected (%s): %s", incoming.call_id, exc.code, exc.message)
            line.forget(incoming.call_id)
            await self._hang_up(line, incoming.call_id)
            return
        if call is None:
            line.forget(incoming.call_id)
            return  # already taken
        # The agent presses keys as in-band tones on the WebRTC leg: GoTo's /dtmf route is unverified (grade D).
        bridge = CallBridge(call, pbx=line, detect_machine=False, digits_out=True, **self.bridge_options)
        reason = await bridge.run_pbx()
        logger.info("call %s ended: %s", call.call_id, reason)

    async def _listen_dials(self) -> None:
        """Outbound GoTo dials, read here rather than by the Channels consumer: nothing on the way to the
        dialer's reply may wait for a database thread (the dialer may be holding it while it waits)."""
        layer = get_channel_layer()
        while True:
            message = await layer.receive(dial_channel())
            try:
                self.take_dial(message)
            except Exception:
                logger.exception("a GoTo dial message could not be taken")

    def take_dial(self, message: dict) -> None:
        """An outbound GoTo call to place (`GoToDialer.dial` waits for the reply)."""
        call_id = (message.get("call") or {}).get("call_id")
        if not self._accepting(call_id):
            return  # left on no one: the dialer's wait runs out and the call ends `media_worker_unavailable`
        self._spawn(str(call_id), self._dial(message))

    async def _dial(self, message: dict) -> None:
        layer, reply_to = get_channel_layer(), message["reply_to"]
        if time.time() > float(message.get("deadline", 0)):
            logger.warning("dial of call %s arrived after its dialer gave up: not placed", message["call"]["call_id"])
            return
        call = BridgeCall(**message["call"])
        line = self.line_for(call.tenant_id)
        if line is None:
            await layer.send(reply_to, _refusal("goto_not_connected", "This tenant has no connected GoTo line."))
            return
        if line.listener.stopped_reason == RECONNECT_REQUIRED:  # no retry loop: the tenant must reconnect GoTo
            await layer.send(
                reply_to, _refusal(RECONNECT_REQUIRED, "GoTo needs reconnecting on the Phone numbers page.")
            )
            return
        bridge = CallBridge(call, pbx=line, detect_machine=True, digits_out=True, **self.bridge_options)
        try:
            external_id = await bridge.dial_pbx(message["to_number"])
        except Exception as exc:
            code = exc.code if isinstance(exc, ApplicationError) else "dial_failed"  # GoTo's refusal, a bad SDP
            logger.warning("call %s: GoTo refused the dial (%s)", call.call_id, code)
            await layer.send(reply_to, _refusal(code, str(exc)))
            await bridge.discard()
            return
        await layer.send(reply_to, {"external_call_id": external_id})
        reason = await bridge.run_dialled()
        logger.info("call %s ended: %s", call.call_id, reason)

    def take_hangup(self, message: dict) -> None:
        """Hang up a GoTo call no bridge owns (a canceled or stuck dial)."""
        self._spawn(f"hangup:{message['external_call_id']}", self._hangup_message(message))

    async def _hangup_message(self, message: dict) -> None:
        line = self.line_for(message["tenant_id"])
        if line is None:
            logger.warning("no GoTo line of tenant %s to hang up %s", message["tenant_id"], message["external_call_id"])
            return
        await self._hang_up(line, message["external_call_id"])

    def _accepting(self, ref) -> bool:
        if not self.accepting:
            logger.warning("media worker is shutting down: call %s left to another worker", ref)
        return self.accepting

    def _spawn(self, key: str, coro) -> None:
        task = asyncio.create_task(coro, name=f"call-{key}")
        self.calls[key] = task
        task.add_done_callback(lambda _: self.calls.pop(key, None))

    async def _hang_up(self, line: GoToLine, external_id: str) -> None:
        try:
            await line.hangup(external_id)
        except Exception:
            logger.warning("could not hang up GoTo call %s", external_id, exc_info=True)

    # --- housekeeping ----------------------------------------------------------------------------

    async def sweep(self, *, goto: bool = True) -> None:
        """Every 30 s: end calls stuck in setup or left open; serve newly connected GoTo accounts."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await database_sync_to_async(call_services.calls_end_stuck)()
            except Exception:
                logger.exception("setup sweep failed")
            if goto:
                try:
                    await self.start_goto()
                except Exception:
                    logger.exception("GoTo lines could not be refreshed")

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
        if self._dial_listener is not None:
            self._dial_listener.cancel()
            await asyncio.gather(self._dial_listener, return_exceptions=True)
        for connection_id in list(self.lines):
            with contextlib.suppress(Exception):
                await self._remove_line(connection_id)
        await self._states_dedup.aclose()
        await self._ringing_claims.aclose()
        await self._store.aclose()


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


def dial_channel() -> str:
    """The channel outbound GoTo dials are sent on; every media worker serving a GoTo line reads it."""
    from django.conf import settings

    return f"{settings.MEDIA_WORKER_CHANNEL}.goto-dial"


def _refusal(code: str, message: str) -> dict:
    return {"error": code, "message": message[:300]}


def dial_message(call: BridgeCall, *, to_number: str, reply_to: str, deadline: float) -> dict:
    """What `GoToDialer.dial` sends a media worker (`take_dial`)."""
    return {
        "type": "goto.dial",
        "call": asdict(call),
        "to_number": to_number,
        "reply_to": reply_to,
        "deadline": deadline,
    }
