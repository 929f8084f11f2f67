"""GoToConnect's wire formats, every one of them, in the provider's own names.

GoToConnect's public API reference cannot be reached from where this was written, so the contract
is the system seed (004, sections 3.2.6, 4.1-4.3 and 5.3). Where the seed is silent we chose, and say
so below. Everything that crosses the wire (URL paths, methods, JSON field names, event names, the
WebSocket subscription messages and close codes) lives here and nowhere else, so that checking the
client against the real API means reading and correcting this one module.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# --- OAuth2 client credentials (RFC 6749 §4.4) ----------------------------------------------------
# POST GOTO_OAUTH_TOKEN_URL, HTTP Basic client_id:client_secret, form grant_type=client_credentials and
# scope="<scopes, space separated>" -> {"access_token", "token_type": "Bearer", "expires_in"}. That is the
# standard request, which `integrations.gateway.oauth.fetch_token` sends; only the scheme is named here.
AUTH_SCHEME = "Bearer"


# --- REST call control, under GOTO_API_BASE_URL, JSON, "Authorization: Bearer <token>" ------------
@dataclass(frozen=True)
class Endpoint:
    """One call-control route: an HTTP method and a path template with an optional {call_id}."""

    method: str
    template: str

    def path(self, call_id: str = "") -> str:
        # The id is one path segment whatever it contains: "../" or "?" in an id cannot change the route.
        return self.template.format(call_id=quote(call_id, safe=""))


CALLS = "/web-calls/v1/calls"
CREATE_CALL = Endpoint("POST", CALLS)  # -> 201 {"call_id"}
ANSWER = Endpoint("POST", CALLS + "/{call_id}/answer")  # -> 200 {"sdp", "type": "offer"}
# The seed says "return SDP answer to GoToConnect" without naming the route: this name is ours.
SDP_ANSWER = Endpoint("POST", CALLS + "/{call_id}/sdp-answer")  # {"type": "answer", "sdp"} -> 204
HOLD = Endpoint("PUT", CALLS + "/{call_id}/hold")  # -> 204
RESUME = Endpoint("DELETE", CALLS + "/{call_id}/hold")  # -> 204
BLIND_TRANSFER = Endpoint("POST", CALLS + "/{call_id}/blind-transfer")  # {"dial_string"} -> 202
WARM_TRANSFER = Endpoint("POST", CALLS + "/{call_id}/warm-transfer")  # {"refer_id"} -> 202
MERGE = Endpoint("POST", CALLS + "/{call_id}/merge")  # {"refer_id"} -> 202
HANGUP = Endpoint("DELETE", CALLS + "/{call_id}")  # -> 204; 404 when the call is already gone

# Dial strings: "tel:" + an E.164 number, or "ext:" + a PBX extension.
TEL_PREFIX = "tel:"
EXT_PREFIX = "ext:"

SDP_OFFER = "offer"
SDP_ANSWER_TYPE = "answer"


def create_call_body(dial_string: str, caller_id: str = "") -> dict[str, str]:
    """A call to an extension may go without caller_id (the PBX shows our own line)."""
    return {"dial_string": dial_string, "caller_id": caller_id} if caller_id else {"dial_string": dial_string}


def sdp_answer_body(sdp: str) -> dict[str, str]:
    return {"type": SDP_ANSWER_TYPE, "sdp": sdp}


def blind_transfer_body(dial_string: str) -> dict[str, str]:
    return {"dial_string": dial_string}


def refer_body(refer_id: str) -> dict[str, str]:
    """Warm transfer and merge name the other leg (a call we created) by its call id."""
    return {"refer_id": refer_id}


def created_call_id(body: Any) -> str | None:
    value = body.get("call_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None


def offer_sdp(body: Any) -> str | None:
    if not isinstance(body, dict) or body.get("type", SDP_OFFER) != SDP_OFFER:
        return None
    value = body.get("sdp")
    return value if isinstance(value, str) and value else None


def error_detail(body: Any) -> tuple[str, str]:
    """(code, message) of an error answer {"error": {"code", "message"}}; empty strings when absent."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


RETRY_AFTER_HEADER = "Retry-After"  # on 429, seconds or an HTTP date


# --- Call events: a WebSocket at GOTO_WEBSOCKET_URL, "Authorization: Bearer <token>" at the handshake --
CHANNEL_CALL_EVENTS = "call-events"
MSG_SUBSCRIBE = "subscribe"
MSG_SUBSCRIBED = "subscribed"
MSG_EVENT = "event"
MSG_ERROR = "error"
# The server closes with 4001 (or refuses the handshake with HTTP 401) when the token is expired or invalid.
CLOSE_TOKEN_EXPIRED = 4001
AUTH_FAILURE_STATUSES = frozenset({401})


def message_type(message: Any) -> str | None:
    """The "type" of a message from the events socket (subscribed, event, error), None when it has none."""
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def subscribe_message(since: str | None) -> dict[str, Any]:
    """Sent once after connecting; `since` (the last event id seen) makes the server replay what followed.

    `since` "" replays from the start of the server's log; None asks for new events only.
    """
    return {"type": MSG_SUBSCRIBE, "channels": [CHANNEL_CALL_EVENTS], "since": since}


# The acknowledgement carries the subscription's position: the id of the newest event the server had
# when it subscribed us ("" when its log was empty). A subscriber that has not seen an event yet
# resubscribes from there, so what was sent while it reconnected is replayed, not lost.
SUBSCRIBED_CURSOR = "cursor"


def subscribed_cursor(message: Any) -> str | None:
    cursor = message.get(SUBSCRIBED_CURSOR) if isinstance(message, dict) else None
    return cursor if isinstance(cursor, str) else None


# Event names and their payloads (docs/telephony.md#inbound-calls, #outbound-calls, #transfers).
CALL_RINGING = "call.ringing"  # {call_id, from, to, direction}
CALL_DIALING = "call.dialing"  # {call_id}
CALL_CONNECTED = "call.connected"  # {call_id, answered_at}
CALL_FAILED = "call.failed"  # {call_id, reason: one of FAILED_REASONS}
CALL_ENDED = "call.ended"  # {call_id, reason: "hangup", ...}: the remote party hung up
CALL_TRANSFERRED = "call.transferred"  # {call_id, transferred_to}
CALL_TRANSFER_FAILED = "call.transfer_failed"  # {call_id, reason}
CALL_MERGED = "call.merged"  # {call_id, refer_id}
EVENT_NAMES = frozenset(
    {
        CALL_RINGING,
        CALL_DIALING,
        CALL_CONNECTED,
        CALL_FAILED,
        CALL_ENDED,
        CALL_TRANSFERRED,
        CALL_TRANSFER_FAILED,
        CALL_MERGED,
    }
)
FAILED_REASONS = frozenset({"no_answer", "busy", "voicemail", "rejected", "error"})
DIRECTION_INBOUND = "inbound"
DIRECTION_OUTBOUND = "outbound"


@dataclass(frozen=True)
class EventFields:
    """The parts of an event message {"type": "event", "id", "event", "timestamp", "data"}."""

    id: str
    name: str
    call_id: str
    data: dict[str, Any]
    timestamp: str


def event_fields(message: Any) -> EventFields | None:
    """An event message's fields, or None when the message is not a well-formed event."""
    if not isinstance(message, dict) or message_type(message) != MSG_EVENT:
        return None
    event_id, name, data = message.get("id"), message.get("event"), message.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(name, str) or not name:
        return None
    data = data if isinstance(data, dict) else {}
    call_id = data.get("call_id")
    return EventFields(
        id=event_id,
        name=name,
        call_id=str(call_id) if call_id is not None else "",
        data=data,
        timestamp=str(message.get("timestamp") or ""),
    )
