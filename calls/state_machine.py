"""The call state machine (docs/architecture.md#the-call-state-machine): the one place that says which status may follow which."""

from django.db import models


class CallStatus(models.TextChoices):
    INITIAL = "initial", "Initial"
    RINGING = "ringing", "Ringing (inbound)"
    DIALING = "dialing", "Dialing (outbound)"
    CONNECTED = "connected", "Connected"
    CONVERSING = "conversing", "Conversing"
    ON_HOLD = "on_hold", "On hold"
    TRANSFERRING = "transferring", "Transferring"
    ERROR = "error", "Error"
    ENDED = "ended", "Ended"


S = CallStatus

# Every state may end (hangup, timeout, error, transfer to a human); ENDED is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.INITIAL: frozenset({S.RINGING, S.DIALING, S.ENDED}),
    S.RINGING: frozenset({S.CONNECTED, S.ENDED}),  # answer
    S.DIALING: frozenset({S.CONNECTED, S.ENDED}),  # connect
    S.CONNECTED: frozenset({S.CONVERSING, S.ENDED}),  # agent_joined
    S.CONVERSING: frozenset({S.ON_HOLD, S.TRANSFERRING, S.ERROR, S.ENDED}),
    S.ON_HOLD: frozenset({S.CONVERSING, S.ENDED}),  # resume
    S.TRANSFERRING: frozenset({S.CONVERSING, S.ENDED}),  # transfer back to an agent, or away
    S.ERROR: frozenset({S.CONVERSING, S.ENDED}),  # recovered, or given up
    S.ENDED: frozenset(),
}

# Ringing is how inbound calls start and dialing how outbound ones do.
DIRECTION_ONLY: dict[str, str] = {S.RINGING: "inbound", S.DIALING: "outbound"}


def status_label(status: str) -> str:
    """A status in words ("Transferring"), never an enum's repr (`CallStatus.TRANSFERRING`)."""
    return CallStatus(status).label if status in CallStatus.values else str(status)


class InvalidTransition(Exception):
    def __init__(self, current: str, target: str, reason: str = ""):
        self.current, self.target = current, target
        super().__init__(reason or f"A call cannot go from “{status_label(current)}” to “{status_label(target)}”.")


def check_transition(*, current: str, target: str, direction: str) -> None:
    """Raise InvalidTransition unless `current -> target` is allowed for a call of `direction`."""
    if target not in TRANSITIONS.get(current, ()):
        raise InvalidTransition(current, target)
    required = DIRECTION_ONLY.get(target)
    if required and required != direction:
        raise InvalidTransition(
            current, target, f"Only {required} calls go to “{status_label(target)}”; this call is {direction}."
        )
