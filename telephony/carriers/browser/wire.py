"""The test-call socket's messages from us to the browser, and the browser call's carrier id.

The protocol in full is `telephony.consumers`' docstring and docs/telephony.md#browser-test-call; what the
browser sends is read by the consumer, what it is sent about its call is built here.
"""

PREFIX = "browser:"  # a browser call's carrier id is `browser:<call uuid>`: unique, and never a phone carrier's


def external_id(call_id: str) -> str:
    return f"{PREFIX}{call_id}"


def answer(call_id: str, sdp: str) -> dict:
    return {"type": "answer", "call_id": call_id, "sdp": sdp}


def hangup(call_id: str) -> dict:
    """Our side hung up (a supervisor, the agent, a limit): `ended` follows with the reason."""
    return {"type": "hangup", "call_id": call_id}


def transfer(call_id: str, transfer_type: str, target: str, *, briefing: str = "") -> dict:
    """A transfer the carrier carried out, as far as a browser can be transferred: it is told where to."""
    message = (
        f"A test call cannot reach the phone network: on a phone call the caller would now be connected to {target}."
    )
    if briefing:
        message = f"{message} {target} would first hear the agent's briefing."
    body = {"type": "transfer", "call_id": call_id, "transfer_type": transfer_type, "target": target}
    return {**body, **({"briefing": briefing} if briefing else {}), "message": message}


def ended(call_id: str, end_reason: str) -> dict:
    return {"type": "ended", "call_id": call_id, "end_reason": end_reason}
