"""The WebRTC bridge: one call's phone leg, media room, agent session and lifecycle (docs/telephony.md).

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

Transfers are carried out by `telephony.transfers` (blind, warm, conference), answering machines handled
by `telephony.voicemail`, the carrier's events kept by `telephony.carrier_events`; the bridge orchestrates
them, talks to the session only through its bridge interface (hold, resume, set_status, record, write) and
acts on the Outcome the session returns (a transfer the agent asked for comes with it, already resolved).

Database writes made while the session runs go through the session's write-behind recorder, so
they land in the order they happened and never block audio.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from livekit import rtc
from livekit.agents import TurnHandlingOptions

from calls import services as call_services
from calls.models import Call, CallEvent
from calls.selectors import BridgeCall
from core import events
from telephony import amd, carrier_events, rooms, voicemail
from telephony.carrier_events import CarrierEvents
from telephony.media import CallMix, PhoneLeg, dtmf, recording_store
from telephony.media.base import LegFactory, MediaLeg
from telephony.transfers import Transfers
from voice import io
from voice.session import CallSession, InProcessMedia, Outcome, RoomMedia, create_call_session

logger = logging.getLogger(__name__)

SESSION_SAMPLE_RATE = 16000  # what the speech engines work at: a third of the phone leg's 48 kHz samples
# A transfer the agent asks for reaches the bridge in the session's Outcome; its stored request also comes
# back on the call's bus group, marked with this reason, and is not carried out twice.
AGENT_DECISION = "agent_decision"


class CallBridge:
    """One call through the bridge. `connect()` answers the offer; `run()` is the rest of the call."""

    def __init__(
        self,
        call: BridgeCall,
        *,
        pbx=None,
        models_factory=None,
        session_options: dict | None = None,
        turn_handling: TurnHandlingOptions | None = None,
        detect_machine: bool = False,
        leg_factory: LegFactory | None = None,
        digits_out: bool = False,
    ):
        self.call, self.pbx = call, pbx
        # `models_factory` builds each session's engines (tests and benchmarks pass fakes); None: the agent's own.
        self._models_factory, self._session_options, self._turn_handling = (
            models_factory,
            session_options,
            turn_handling,
        )
        self._detect_machine = detect_machine
        self._digits_out = digits_out  # the agent may press keys (in-band DTMF on the leg)
        self.mix = CallMix() if settings.CALL_RECORDING_ENABLED else None
        self.audio_input = io.CallAudioInput(label=f"caller-{call.call_id}")
        self._listeners: list[asyncio.Queue] = []
        self._screening: asyncio.Queue | None = None  # the callee's audio for the answering-machine check
        # The caller's media leg: WebRTC (PhoneLeg) unless the carrier brings its own (a Twilio media stream).
        self.leg: MediaLeg = (leg_factory or _webrtc_leg)(
            label=f"call-{call.call_id}",
            on_audio=self._on_caller_audio,
            mix=self.mix,
            session_sample_rate=SESSION_SAMPLE_RATE,
        )
        self.session: CallSession | None = None
        self._caller_sink: Callable[[rtc.AudioFrame], None] | None = None
        self.room: rooms.LiveKitRoom | None = None
        self.pbx_events = CarrierEvents()
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
        await self._prepare_media()
        assert isinstance(self.leg, PhoneLeg)  # an SDP offer is for the WebRTC leg
        answer = await self.leg.accept(offer_sdp)
        self._media_up = True
        return answer

    async def media_started(self) -> None:
        """A leg without SDP (a carrier's media stream) carries audio now: what `connect` does after its answer."""
        await self._prepare_media()
        self._media_up = True

    async def _prepare_media(self) -> None:
        await self._subscribe()
        if self._detect_machine and settings.AMD["enabled"] and self._screening is None:
            self._screening = asyncio.Queue()  # from the first frame: "Hello?" comes right at pick-up
            self._listeners.append(self._screening)

    async def answer_pbx(self) -> None:
        """The carrier's side of answering: it connects the ringing call's media to our leg (whoever offers)."""
        await self._prepare_media()
        await self.pbx.answer_leg(self.call.external_call_id, self.leg)
        self._media_up = True

    async def dial_pbx(self, to_number: str) -> str:
        """Place an outbound carrier call whose media offer is ours (the leg's); returns the carrier's id.

        Listening on the call's group starts first: the carrier's events may come before its answer does.
        """
        await self._prepare_media()
        dial_string = self.pbx.dial_string(to_number)
        external_id = await self.pbx.create_call(dial_string=dial_string, caller_id=self.call.our_number, leg=self.leg)
        self.call.external_call_id = external_id
        self._media_up = True
        return external_id

    async def run_dialled(self) -> str | None:
        """After `dial_pbx`: until the callee picks up, then the call; returns the end reason.

        A call that fails or ends unanswered was ended by `telephony.dispatch` (with the carrier's reason):
        the bridge only cleans up and returns None. One never answered within twice the setup timeout
        (the stuck-call sweep's limit) is hung up.
        """
        ext = self.call.external_call_id or ""
        names = {carrier_events.CONNECTED, carrier_events.FAILED, carrier_events.ENDED}
        try:
            name, _ = await self.pbx_events.wait(ext, names, 2 * settings.CALL_SETUP_TIMEOUT_SECONDS)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.pbx.hangup(ext)
            await self._cleanup()
            return None
        if name != carrier_events.CONNECTED:
            await self._cleanup()
            return None
        return await self.run()

    async def discard(self) -> None:
        """Release a bridge whose call never got going (the dial was refused): nothing is stored."""
        await self._cleanup()

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

    async def caller_pressed(self, digits: str) -> None:
        """DTMF from the caller's carrier: the agent is told (before its session exists, the digits are dropped)."""
        if self.session is not None:
            self.session.caller_pressed(digits)
        else:
            logger.info("call %s: DTMF %s before the agent joined, dropped", self.call.call_id, digits)

    def _send_digits(self, digits: str) -> None:
        """The agent presses keys: their DTMF tones go out on the leg like its voice."""
        self.leg.play(dtmf.tones(digits))

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
        if kind == "pbx.event" and isinstance(name, str):  # dispatch always names the event
            ext = message.get("external_call_id") or data.get("call_id", "")
            await self.pbx_events.add(ext, name, data)
            if name in (carrier_events.ENDED, carrier_events.FAILED) and ext == self.call.external_call_id:
                self._remote_gone.set()
        elif kind == "bus.event" and name == CallEvent.Type.CALL_TRANSFER_REQUESTED:
            if data.get("reason") != AGENT_DECISION:  # the session's Outcome carries the agent's own
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
            session = await self._start_session()
            return await self._converse(session)
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

    async def _start_session(self) -> CallSession:
        media: InProcessMedia | RoomMedia
        if self.room is None:  # the in-process link
            media = InProcessMedia(self.audio_input, io.CallAudioOutput(sink=self.leg.play, on_clear=self.leg.clear))
            self._caller_sink = self.audio_input.push_frame
        else:  # the phone leg published into the LiveKit room; the agent joins it
            self._caller_sink = await self.room.link(self.leg)
            media = await self.room.agent_media()
        self.session = session = await create_call_session(
            tenant_id=self.call.tenant_id,
            call_id=self.call.call_id,
            media=media,
            models=self._models(),
            turn_handling=self._turn_handling,
            session_options=self._session_options,
            digit_sink=self._send_digits if self._digits_out else None,
        )
        await session.start()
        return session

    def _models(self):
        return self._models_factory() if self._models_factory is not None else None

    async def _converse(self, session: CallSession) -> str:
        """Until the call ends: a transfer, the caller's hang-up, our hang-up, or the session's outcome."""
        while True:
            transfer, ended = asyncio.ensure_future(self._transfers.get()), asyncio.ensure_future(session.wait())
            waits = {
                "transfer": transfer,
                "remote": asyncio.ensure_future(self._remote_gone.wait()),
                "leg": asyncio.ensure_future(self.leg.wait_closed()),
                "hangup": asyncio.ensure_future(self._hangup.wait()),
                "session": ended,
            }
            await asyncio.wait(waits.values(), return_when=asyncio.FIRST_COMPLETED)
            for task in waits.values():
                if not task.done():
                    task.cancel()
            which = next(name for name, task in waits.items() if task.done() and not task.cancelled())
            if which == "transfer":
                if await self._transfer(session, transfer.result()):
                    return await self._end(Call.EndReason.TRANSFERRED)
                continue
            if which in ("remote", "leg"):
                return await self._end(Call.EndReason.CALLER_HANGUP)
            if which == "hangup":
                return await self._end(Call.EndReason.AGENT_HANGUP)
            outcome = ended.result()
            if outcome.reason == Call.EndReason.TRANSFERRED and outcome.transfer:
                if await self._transfer(session, outcome.transfer):
                    return await self._end(Call.EndReason.TRANSFERRED)
                continue
            return await self._end(outcome.reason)

    # --- answering machines (outbound) -------------------------------------------------------------

    async def _screen_for_machine(self) -> str | None:
        """None for a person (the agent takes over); an end reason when a machine answered."""
        screening = self._screening
        assert screening is not None  # connect() opened it, on the same condition as this check
        gone = (asyncio.ensure_future(self.leg.wait_closed()), asyncio.ensure_future(self._remote_gone.wait()))
        frames = voicemail.listen(screening, *gone)

        async def note(key: str, value) -> None:
            await self._write(
                call_services.call_note, call_id=self.call.call_id, tenant_id=self.call.tenant_id, key=key, value=value
            )

        try:
            detection = await voicemail.screen_for_machine(self.call, frames, note)
        finally:
            await frames.aclose()
            self._listeners.remove(screening)
        if detection.verdict != amd.Verdict.MACHINE:
            return None
        if self.call.voicemail_message:
            await voicemail.leave_voicemail(self.call, self.leg, self.audio_input, models=self._models())
        return Call.EndReason.VOICEMAIL

    # --- transfers ---------------------------------------------------------------------------------

    async def _transfer(self, session: CallSession, request: dict) -> bool:
        """Carry out a transfer request; True when the caller has left the agent for good."""
        if self._transferring:
            return False
        self._transferring = True
        try:
            transfers = Transfers(call=self.call, carrier=self.pbx, events=self.pbx_events, session=session)
            return await transfers.carry_out(request)
        finally:
            self._transferring = False

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
            self.session.write(fn, **kwargs)
        else:
            await database_sync_to_async(fn)(**kwargs)


def _webrtc_leg(**options) -> MediaLeg:
    return PhoneLeg(ice_servers=settings.WEBRTC_ICE_SERVERS or None, **options)
