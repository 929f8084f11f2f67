"""The call control every carrier adapter gives the bridge, whatever its protocol."""

from typing import Protocol


class Carrier(Protocol):
    """A carrier's control of its calls, by the carrier's own call id.

    The media of a call reaches the bridge through the adapter's media leg (WebRTC SDP for GoTo Connect);
    what is here is signalling: everything the bridge asks the carrier to do to a call.
    """

    def dial_string(self, target: str) -> str:
        """How this carrier dials a target given as E.164 or `ext:NNN` (ValueError-like refusal when it cannot)."""

    async def create_call(self, *, dial_string: str, caller_id: str) -> str:
        """Dial out (a new call or a consult leg); returns the carrier's id for it."""

    async def answer(self, call_id: str) -> str:
        """Take a ringing call; returns the carrier's media offer (SDP)."""

    async def send_answer(self, call_id: str, sdp: str) -> None:
        """Our media answer (SDP) to the carrier's offer."""

    async def hangup(self, call_id: str) -> None: ...

    async def hold(self, call_id: str) -> None: ...

    async def resume(self, call_id: str) -> None: ...

    async def blind_transfer(self, call_id: str, target: str) -> None: ...

    async def warm_transfer(self, call_id: str, consult_call_id: str) -> None:
        """Join the caller on `call_id` with the target on `consult_call_id`, and leave."""

    async def merge(self, call_id: str, consult_call_id: str) -> None:
        """A conference: add the consult leg's party to the call, the agent stays."""

    async def aclose(self) -> None: ...
