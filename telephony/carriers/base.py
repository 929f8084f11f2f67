"""The call control every carrier adapter gives the bridge, whatever its protocol (docs/carriers.md)."""

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from telephony.media import PhoneLeg


class Carrier(Protocol):
    """A carrier's control of its calls, by the carrier's own call id (`Call.external_call_id`).

    The media of a call reaches the bridge through the adapter's media leg (WebRTC SDP for GoTo Connect and
    the browser test call, a Media Stream for Twilio); what is here is signalling: everything the bridge asks
    the carrier to do to a call. What a carrier cannot do it refuses with an exception a person can read (the
    reason a failed transfer stores), and the caller stays with the agent. A carrier that cannot give the
    agent a second media leg may also offer `transfer_with_briefing(call_id, *, target, briefing, call,
    events)`, which the warm transfer then uses instead of hold, `create_call` and `warm_transfer`.
    """

    def dial_string(self, target: str) -> str:
        """How this carrier dials a target given as E.164 or `ext:NNN` (ValueError-like refusal when it cannot)."""

    async def create_call(self, *, dial_string: str, caller_id: str, leg: "PhoneLeg") -> str:
        """Dial out (a new call or a consult leg) with its media on `leg`; returns the carrier's id for it.

        Who makes the SDP offer is the carrier's business (GoTo's web calls: we offer, GoTo answers).
        """

    async def answer_leg(self, call_id: str, leg: "PhoneLeg") -> None:
        """Take a ringing call with its media on `leg` (the carrier negotiates SDP either way round)."""

    async def hangup(self, call_id: str) -> None: ...

    async def hold(self, call_id: str) -> None: ...

    async def resume(self, call_id: str) -> None: ...

    async def blind_transfer(self, call_id: str, target: str) -> None: ...

    async def warm_transfer(self, call_id: str, consult_call_id: str) -> None:
        """Join the caller on `call_id` with the target on `consult_call_id`, and leave."""

    async def merge(self, call_id: str, consult_call_id: str) -> None:
        """A conference: add the consult leg's party to the call, the agent stays."""

    async def aclose(self) -> None: ...
