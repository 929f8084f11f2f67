"""The WebRTC bridge: one call's phone leg, media room, agent session and lifecycle (seed 3.2, 4.1-4.3).

One `CallBridge` runs as one asyncio task per call in a media worker (`manage.py run_media`) or,
for a browser test call, in the websocket's own process. It

1. accepts the remote SDP offer with aiortc (`telephony.media.PhoneLeg`): the PBX's offer from
   `answer`, or a browser's; Opus 48 kHz in, resampled for the agent session, and the agent's
   audio back as Opus in steadily paced 20 ms frames;
2. moves the call to `connected`, creates the media room (a LiveKit room `call-{tenant}-{call}`
   when LIVEKIT_URL is set, the in-process link otherwise) and records `room.ready`;
3. on outbound calls, listens first for an answering machine (`telephony.amd`): a machine gets
   the agent's voicemail message after its tone, and the call ends as `voicemail`;
4. starts the agent session (`voice.session`), which greets and converses;
5. follows the call on its bus group `call.<id>`: the PBX's events (hang-up, transfer outcomes),
   transfer requests from the agent or the API;
6. ends it on hang-up (either side), error, idle timeout or maximum duration, with `call.ended`
   carrying duration and end reason, and stores the mixed recording.

Transfers (4.3): blind (the PBX hands the caller over), warm (hold the caller, dial the target,
the agent briefs the target with the context, then the PBX joins them) and conference (dial a
supervisor and merge them into the call with the agent). A transfer that fails returns the
caller to the agent, who apologises; each step is a stored call event.

Database writes made while the session runs go through the session's write-behind recorder, so
they land in the order they happened and never block audio.
"""

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from livekit import rtc

from calls import selectors as call_selectors
from calls import services as call_services
from calls.models import Call, CallEvent
from calls.selectors import BridgeCall
from calls.state_machine import CallStatus
from core import events
from telephony import amd, rooms, services
from telephony.carriers.goto import wire
from telephony.carriers.goto.client import dial_string
from telephony.media import CallMix, PhoneLeg, recording_store
from voice import io
from voice.session import CallSession, InProcessMedia, Outcome, create_call_session

logger = logging.getLogger(__name__)

SESSION_SAMPLE_RATE = 16000  # what the speech engines work at: a third of the phone leg's 48 kHz samples
TRANSFER_TIMEOUT_SECONDS = 30.0  # the PBX's answer to a transfer or a consult call's connect
APOLOGY = "I'm sorry, I couldn't connect you just now. I'm still here: how else can I help?"
BRIEFING = "Hello, this is {agent}, the virtual assistant. I have a caller for you. {context}"


class TransferFailed(Exception):
    pass


class _PbxEvents:
    """The PBX events of this call and its consult legs, kept so a waiter never misses an early one."""

    def __init__(self):
        self._seen: list[tuple[str, str, dict]] = []
        self._changed = asyncio.Condition()

    async def add(self, external_id: str, name: str, data: dict) -> None:
        async with self._changed:
            self._seen.append((external_id, name, data))
            self._changed.notify_all()

    async def wait(self, external_id: str, names: set[str], timeout: float, *, after: int = 0) -> tuple[str, dict]:
        """The first event named in `names` for `external_id` at or after position `after`."""

        def find():
            for ext, name, data in self._seen[after:]:
                if ext == external_id and name in names:
                    return name, data
            return None

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(find), timeout)
            return find()

    @property
    def mark(self) -> int:
        return len(self._seen)


class CallBridge:
    """One call through the bridge. `connect()` answers the offer; `run()` is the rest of the call."""

    def __init__(
        self,
        call: BridgeCall,
        *,
        pbx=None,
        models_factory=None,
        session_options: dict | None = None,
        turn_handling: dict | None = None,
        detect_machine: bool = False,
    ):
        self.call, self.pbx = call, pbx
        # `models_factory` builds each session's engines (tests and benchmarks pass fakes); None: the agent's own.
        self._models_factory, self._session_options, self._turn_handling = (
            models_factory,
            session_options,
            turn_handling,
        )
        self._detect_machine = detect_machine
        self.mix = CallMix() if settings.CALL_RECORDING_ENABLED else None
        self.audio_input = io.CallAudioInput(label=f"caller-{call.call_id}")
        self._listeners: list[asyncio.Queue] = []
        self._screening: asyncio.Queue | None = None  # the callee's audio for the answering-machine check
        self.leg = PhoneLeg(
            label=f"call-{call.call_id}",
            on_audio=self._on_caller_audio,
            mix=self.mix,
            session_sample_rate=SESSION_SAMPLE_RATE,
            ice_servers=settings.WEBRTC_ICE_SERVERS or None,
        )
        self.session: CallSession | None = None
        self._caller_sink = None
        self.room = None
        self.pbx_events = _PbxEvents()
        self._transfers: asyncio.Queue[dict] = asyncio.Queue()
        self._channel: str | None = None
        self._reader: asyncio.Task | None = None
        self._hangup = asyncio.Event()  # ended from our side (the API, a supervisor)
        self._remote_gone = asyncio.Event()  # the PBX says the other party hung up
        self._media_up = False  # the offer was accepted: a closed leg then means the other side left
        self._transferring = False
        self.end_reason: str | None = None

    # --- setup -----------------------------------------------------------------------------------

    async def connect(self, offer_sdp: str) -> str:
        """Accept the remote offer; returns our SDP answer (InvalidOffer for a bad one)."""
        await self._subscribe()
        if self._detect_machine and settings.AMD["enabled"] and self._screening is None:
            self._screening = asyncio.Queue()  # from the first frame: "Hello?" comes right at pick-up
            self._listeners.append(self._screening)
        answer = await self.leg.accept(offer_sdp)
        self._media_up = True
        return answer

    async def answer_pbx(self) -> None:
        """The PBX's side of answering (4.1 step 2): get its offer, accept it, send our answer back."""
        ext = self.call.external_call_id
        offer = await self.pbx.answer(ext)
        answer = await self.connect(offer)
        await self.pbx.send_answer(ext, answer)

    async def run_pbx(self) -> str:
        """A PBX call from ringing (inbound) or picked up (outbound) to its end; returns the end reason."""
        await self._subscribe()
        try:
            await asyncio.wait_for(self.answer_pbx(), settings.CALL_SETUP_TIMEOUT_SECONDS)
        except Exception as exc:  # a bad offer, a PBX error, no answer in time: the call ends, the worker goes on
            timed_out = isinstance(exc, TimeoutError)
            code = "setup_timeout" if timed_out else getattr(exc, "code", type(exc).__name__)
            logger.warning("call %s: could not answer (%s): %s", self.call.call_id, code, exc)
            return await self.abort(code, reason=Call.EndReason.SETUP_TIMEOUT if timed_out else Call.EndReason.ERROR)
        return await self.run()

    async def abort(self, code: str, *, reason: str = Call.EndReason.ERROR) -> str:
        """End a call that never got its media (a bad offer, a setup failure), noting why."""
        try:
            await database_sync_to_async(call_services.call_note)(
                call_id=self.call.call_id, tenant_id=self.call.tenant_id, key="failure_reason", value=code
            )
            return await self._end(reason)
        finally:
            await self._cleanup()

    def hangup_by_caller(self) -> None:
        """The caller left (a browser closed its socket, said hang-up)."""
        self._remote_gone.set()

    def hangup(self) -> None:
        """End the call from our side (a supervisor, the API)."""
        self._hangup.set()

    async def _subscribe(self) -> None:
        if self._channel is not None:
            return
        layer = get_channel_layer()
        self._channel = await layer.new_channel()
        await layer.group_add(events.call_group(self.call.call_id), self._channel)
        self._reader = asyncio.create_task(self._read_bus(layer), name=f"bridge-bus-{self.call.call_id}")

    async def _read_bus(self, layer) -> None:
        while True:
            message = await layer.receive(self._channel)
            try:
                await self._on_message(message)
            except Exception:
                logger.exception("call %s: could not handle %s", self.call.call_id, message.get("event"))

    async def _on_message(self, message: dict) -> None:
        kind, name, data = message.get("type"), message.get("event"), message.get("data") or {}
        if kind == "pbx.event":
            ext = message.get("external_call_id") or data.get("call_id", "")
            await self.pbx_events.add(ext, name, data)
            if name in (wire.CALL_ENDED, wire.CALL_FAILED) and ext == self.call.external_call_id:
                self._remote_gone.set()
        elif kind == "bus.event" and name == CallEvent.Type.CALL_TRANSFER_REQUESTED:
            self._transfers.put_nowait(data)
        elif kind == "bridge.hangup":
            self._hangup.set()

    def _on_caller_audio(self, frame: rtc.AudioFrame) -> None:
        if self._caller_sink is not None:  # the agent hears the caller once its session is there
            self._caller_sink(frame)
        for queue in self._listeners:
            queue.put_nowait(frame)

    # --- the call --------------------------------------------------------------------------------

    async def run(self) -> str:
        """From connected to ended; returns the end reason. Always cleans up."""
        try:
            await self._write(
                call_services.call_mark_connected, call_id=self.call.call_id, tenant_id=self.call.tenant_id
            )
            await self._open_room()
            if self._detect_machine and settings.AMD["enabled"]:
                verdict = await self._screen_for_machine()
                if verdict is not None:
                    return await self._end(verdict)
            await self._start_session()
            return await self._converse()
        except asyncio.CancelledError:  # the worker is shutting down mid-call
            await asyncio.shield(self._end(Call.EndReason.ERROR))
            raise
        except Exception:
            logger.exception("call %s: the bridge failed", self.call.call_id)
            return await self._end(Call.EndReason.ERROR)
        finally:
            await self._cleanup()

    async def _open_room(self) -> None:
        self.room = await rooms.open_room(self.call)
        payload = {
            "room_name": self.call.room_name,
            "call_id": self.call.call_id,
            "tenant_id": self.call.tenant_id,
            "agent_id": self.call.agent_id,
            "caller_number": self.call.metadata.get("caller_number", ""),
            "context": self.call.metadata.get("context", {}),
        }
        await self._write(
            call_services.call_event,
            call_id=self.call.call_id,
            tenant_id=self.call.tenant_id,
            event_type="room.ready",
            payload=payload,
        )

    async def _start_session(self) -> None:
        if self.room is None:  # the in-process link
            media = InProcessMedia(self.audio_input, io.CallAudioOutput(sink=self.leg.play))
            self._caller_sink = self.audio_input.push_frame
        else:  # the phone leg published into the LiveKit room; the agent joins it
            self._caller_sink = await self.room.link(self.leg)
            media = await self.room.agent_media()
        self.session = await create_call_session(
            tenant_id=self.call.tenant_id,
            call_id=self.call.call_id,
            media=media,
            models=self._models(),
            turn_handling=self._turn_handling,
            session_options=self._session_options,
        )
        await self.session.start()

    def _models(self):
        return self._models_factory() if self._models_factory is not None else None

    async def _converse(self) -> str:
        """Until the call ends: a transfer, the caller's hang-up, our hang-up, or the session's outcome."""
        while True:
            waits = {
                "transfer": asyncio.ensure_future(self._transfers.get()),
                "remote": asyncio.ensure_future(self._remote_gone.wait()),
                "leg": asyncio.ensure_future(self.leg.wait_closed()),
                "hangup": asyncio.ensure_future(self._hangup.wait()),
                "session": asyncio.ensure_future(self.session.wait()),
            }
            await asyncio.wait(waits.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in waits.values():
                if not task.done():
                    task.cancel()
            which = next(name for name, task in waits.items() if task.done() and not task.cancelled())
            if which == "transfer":
                if await self._transfer(waits["transfer"].result()):
                    return await self._end(Call.EndReason.TRANSFERRED)
                continue
            if which in ("remote", "leg"):
                return await self._end(Call.EndReason.CALLER_HANGUP)
            if which == "hangup":
                return await self._end(Call.EndReason.AGENT_HANGUP)
            outcome: Outcome = waits["session"].result()
            if outcome.reason == Call.EndReason.TRANSFERRED:
                request = await self._transfer_request_of_session()
                if request is not None and await self._transfer(request):
                    return await self._end(Call.EndReason.TRANSFERRED)
                continue
            return await self._end(outcome.reason)

    # --- answering machines (outbound) -------------------------------------------------------------

    async def _listen(self, queue: asyncio.Queue) -> AsyncIterator[rtc.AudioFrame]:
        gone = [asyncio.ensure_future(self.leg.wait_closed()), asyncio.ensure_future(self._remote_gone.wait())]
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, *gone}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    return
                yield getter.result()
        finally:
            for waiter in gone:
                waiter.cancel()

    async def _screen_for_machine(self) -> str | None:
        """None for a person (the agent takes over); an end reason when a machine answered."""
        listen = self._listen(self._screening)
        try:
            detection = await amd.detect(listen)
            note = dataclasses.asdict(detection) | {"verdict": str(detection.verdict)}
            await self._write(
                call_services.call_note, call_id=self.call.call_id, tenant_id=self.call.tenant_id, key="amd", value=note
            )
            if detection.verdict != amd.Verdict.MACHINE:
                return None
            logger.info("call %s: answering machine (%s)", self.call.call_id, detection.reason)
            if not self.call.voicemail_message:
                return Call.EndReason.VOICEMAIL
            if detection.reason != amd.Reason.BEEP:  # after the record tone the machine is already listening
                await amd.wait_for_greeting_end(listen)
        finally:
            await listen.aclose()
            self._listeners.remove(self._screening)
        await self._leave_voicemail()
        return Call.EndReason.VOICEMAIL

    async def _leave_voicemail(self) -> None:
        session = await create_call_session(
            tenant_id=self.call.tenant_id,
            call_id=self.call.call_id,
            media=InProcessMedia(self.audio_input, io.CallAudioOutput()),
            models=self._models(),
        )
        try:
            await self._speak(session, self.leg, self.call.voicemail_message)
        finally:
            await session.models.aclose()

    @staticmethod
    async def _speak(session: CallSession, leg: PhoneLeg, text: str) -> None:
        """Say `text` on `leg` in the agent's voice and wait until it has been played out."""
        async for frame in session.synthesize(text):
            leg.play(frame)
        while leg.queued_seconds > 0 and not leg.closed:
            await asyncio.sleep(0.05)

    # --- transfers (4.3) -------------------------------------------------------------------------

    async def _transfer_request_of_session(self) -> dict | None:
        """The transfer the agent asked for: its call.transfer_requested, from the bus or the database."""
        try:
            return await asyncio.wait_for(self._transfers.get(), 5.0)
        except TimeoutError:
            await self.session.recorder.flush()
            return await database_sync_to_async(call_selectors.last_transfer_request)(
                call_id=self.call.call_id, tenant_id=self.call.tenant_id
            )

    async def _transfer(self, request: dict) -> bool:
        """Carry out a transfer request; True when the caller has left the agent for good."""
        if self._transferring:
            return False
        self._transferring = True
        kind, target = request.get("transfer_type") or request.get("type"), request.get("target", "")
        logger.info("call %s: %s transfer to %s", self.call.call_id, kind, target)
        if kind != "conference":
            self.session.hold_for_transfer()
        try:
            if self.pbx is None or not self.call.external_call_id:
                raise TransferFailed("this call has no PBX leg to transfer")
            if kind == "blind":
                await self._blind(target)
            elif kind == "warm":
                await self._warm(target, request.get("context", ""))
            else:
                await self._conference(target)
                return False
            return True
        except Exception as exc:  # TransferFailed, a PBX error, a timeout: the caller goes back to the agent
            reason = str(exc) or type(exc).__name__
            logger.warning("call %s: %s transfer to %s failed: %s", self.call.call_id, kind, target, reason)
            self._record(
                CallEvent.Type.CALL_TRANSFER_FAILED, {"transfer_type": kind, "target": target, "reason": reason}
            )
            self.session.recorder.transition(CallStatus.CONVERSING)
            self.session.resume_after_transfer(None if kind == "conference" else APOLOGY)
            return False
        finally:
            self._transferring = False

    async def _blind(self, target: str) -> None:

        ext, mark = self.call.external_call_id, self.pbx_events.mark
        await self.pbx.blind_transfer(ext, dial_string(target))
        await self._transferred(ext, target, mark)

    async def _transferred(self, ext: str, target: str, mark: int) -> None:
        name, data = await self.pbx_events.wait(
            ext, {wire.CALL_TRANSFERRED, wire.CALL_TRANSFER_FAILED}, TRANSFER_TIMEOUT_SECONDS, after=mark
        )
        if name == wire.CALL_TRANSFER_FAILED:
            raise TransferFailed(data.get("reason") or "the PBX could not transfer the call")
        payload = {"call_id": self.call.call_id, "transferred_to": data.get("transferred_to") or target}
        self._record(CallEvent.Type.CALL_TRANSFERRED, payload)

    async def _dial_consult(self, target: str) -> str:
        """Dial a second leg (the warm-transfer target or a supervisor) and wait until it answers."""

        mark = self.pbx_events.mark
        consult = await self.pbx.create_call(dial_string=dial_string(target), caller_id=self.call.our_number)
        await database_sync_to_async(services.consult_leg_register)(
            external_id=consult, call_id=self.call.call_id, tenant_id=self.call.tenant_id
        )
        name, data = await self.pbx_events.wait(
            consult, {wire.CALL_CONNECTED, wire.CALL_FAILED, wire.CALL_ENDED}, TRANSFER_TIMEOUT_SECONDS, after=mark
        )
        if name != wire.CALL_CONNECTED:
            with contextlib.suppress(Exception):
                await self.pbx.hangup(consult)
            raise TransferFailed(f"{target} did not answer ({data.get('reason') or name})")
        return consult

    async def _warm(self, target: str, context: str) -> None:
        ext = self.call.external_call_id
        await self.pbx.hold(ext)
        self._record(CallEvent.Type.CALL_HELD, {"call_id": self.call.call_id, "reason": "warm_transfer"})
        consult, briefing_leg = None, None
        try:
            consult = await self._dial_consult(target)
            briefing_leg = PhoneLeg(
                label=f"consult-{self.call.call_id}", ice_servers=settings.WEBRTC_ICE_SERVERS or None
            )
            offer = await self.pbx.answer(consult)
            await self.pbx.send_answer(consult, await briefing_leg.accept(offer))
            text = BRIEFING.format(agent=self.call.agent_name, context=context or "").strip()
            await self._speak(self.session, briefing_leg, text)
            if briefing_leg.closed:
                raise TransferFailed(f"{target} hung up during the briefing")
            mark = self.pbx_events.mark
            await self.pbx.warm_transfer(ext, consult)
            await self._transferred(ext, target, mark)
        except BaseException:
            if consult is not None:
                with contextlib.suppress(Exception):
                    await self.pbx.hangup(consult)
            with contextlib.suppress(Exception):
                await self.pbx.resume(ext)
            self._record(CallEvent.Type.CALL_RESUMED, {"call_id": self.call.call_id})
            raise
        finally:
            if briefing_leg is not None:
                await briefing_leg.aclose()

    async def _conference(self, target: str) -> None:
        ext = self.call.external_call_id
        consult = await self._dial_consult(target)
        mark = self.pbx_events.mark
        await self.pbx.merge(ext, consult)
        name, data = await self.pbx_events.wait(
            ext, {wire.CALL_MERGED, wire.CALL_TRANSFER_FAILED}, TRANSFER_TIMEOUT_SECONDS, after=mark
        )
        if name != wire.CALL_MERGED:
            with contextlib.suppress(Exception):
                await self.pbx.hangup(consult)
            raise TransferFailed(data.get("reason") or "the PBX could not merge the calls")
        self._record(CallEvent.Type.CALL_MERGED, {"call_id": self.call.call_id, "refer_id": consult, "target": target})
        self.session.recorder.transition(CallStatus.CONVERSING)
        self.session.resume_after_transfer(None)

    # --- the end ---------------------------------------------------------------------------------

    async def _end(self, reason: str) -> str:
        """Hang up our side if the other is still there, stop the session, store call.ended."""
        self.end_reason = reason
        remote_gone = self._remote_gone.is_set() or (self._media_up and self.leg.closed)
        ours_to_hang_up = self.pbx is not None and self.call.external_call_id and reason != Call.EndReason.TRANSFERRED
        if ours_to_hang_up and not remote_gone:
            with contextlib.suppress(Exception):
                await self.pbx.hangup(self.call.external_call_id)
        if self.session is not None:
            self.session.outcome = Outcome(reason=reason)
            await self.session.aclose()  # ends the call unless it was transferred
            if reason == Call.EndReason.TRANSFERRED:
                await database_sync_to_async(call_services.call_end)(
                    call_id=self.call.call_id, tenant_id=self.call.tenant_id, reason=reason
                )
        else:
            await database_sync_to_async(call_services.call_end)(
                call_id=self.call.call_id, tenant_id=self.call.tenant_id, reason=reason
            )
        return reason

    async def _cleanup(self) -> None:
        await self.leg.aclose()
        if self.room is not None:
            with contextlib.suppress(Exception):
                await self.room.aclose()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            with contextlib.suppress(Exception):
                await get_channel_layer().group_discard(events.call_group(self.call.call_id), self._channel)
        await self._store_recording()

    async def _store_recording(self) -> None:
        if self.mix is None:
            return
        result = await asyncio.to_thread(self.mix.close)
        if result is None:
            return
        path, duration = result
        try:
            await database_sync_to_async(recording_store)(
                call_id=self.call.call_id, tenant_id=self.call.tenant_id, path=path, duration=duration
            )
        except Exception:
            logger.exception("call %s: the recording could not be stored", self.call.call_id)

    # --- writes ----------------------------------------------------------------------------------

    async def _write(self, fn, **kwargs) -> None:
        """A database write in order with the session's own (directly before the session exists)."""
        if self.session is not None:
            self.session.recorder.write(fn, **kwargs)
        else:
            await database_sync_to_async(fn)(**kwargs)

    def _record(self, event_type: str, payload: dict) -> None:
        self.session.recorder.event(event_type, payload)
