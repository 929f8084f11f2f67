"""GoTo Connect's wire formats, every one of them, in the provider's own names, each with its evidence.

What GoTo publishes (and what third parties saw on the live API) is compiled, with sources, in the
project's GoTo research note; docs/telephony.md#goto-connect lists every route below with its grade:

- A: GoTo's own guides and sample repositories (notification channels, call-events subscriptions,
  call-state payloads, rate limits, the error body);
- B: a scraped copy of GoTo's API reference (web-calls notifications, errors);
- C: third-party code that ran against the live API (devices, extensions, placing a web call, hang-up);
- D: unverified third-party code (hold/unhold, dtmf, transfers, merge, answer, conversation-space
  recovery by sequence).

Every route of grade C or D is marked here: those are the first things to check against GoTo's live
reference (https://developer.goto.com/GoToConnect/). GoTo adds response attributes without notice, so
every parser below reads the fields it needs and ignores the rest.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

AUTH_SCHEME = "Bearer"

# The three APIs, each with its own rate limit (GoTo: 10 requests a second per API by default).
API_NOTIFICATION_CHANNEL = "notification-channel"
API_CALL_EVENTS = "call-events"
API_WEB_CALLS = "web-calls"
APIS = (API_NOTIFICATION_CHANNEL, API_CALL_EVENTS, API_WEB_CALLS)


@dataclass(frozen=True)
class Route:
    """One REST route: method, path template ({name} parameters, each one quoted path segment), API, grade."""

    method: str
    template: str
    api: str
    grade: str

    def path(self, **params: str) -> str:
        # An id is one path segment whatever it contains: "../" or "?" in it cannot change the route.
        return self.template.format(**{name: quote(value, safe="") for name, value in params.items()})


# --- Notification channel (grade A: G14, the Screen Pop and call-events-report samples) ------------
CHANNELS = "/notification-channel/v1/channels/{nickname}"
CHANNEL_CREATE = Route("POST", CHANNELS, API_NOTIFICATION_CHANNEL, "A")  # -> 201
CHANNEL_REFRESH = Route("PUT", CHANNELS + "/{channel_id}", API_NOTIFICATION_CHANNEL, "A")  # -> 200
CHANNEL_DELETE = Route("DELETE", CHANNELS + "/{channel_id}", API_NOTIFICATION_CHANNEL, "A")  # -> 204 (404: gone)
# The samples disagree on the spelling ("WebSockets" on api.goto.com, "WebSocket" on webrtc.jive.com);
# the channel answer echoes "WebSockets", so that is the one sent.
CHANNEL_TYPE_WEBSOCKET = "WebSockets"

# Housekeeping frames on the channel's socket (data.type; data.source "notification-websocket", grade C).
WEBSOCKET_REFRESH_REQUIRED = "WEBSOCKET_REFRESH_REQUIRED"  # PUT the refresh
WEBSOCKET_TO_BE_CLOSED = "WEBSOCKET_TO_BE_CLOSED"  # create channel and subscriptions again

# --- Call events (grade A: G15, the Screen Pop sample) --------------------------------------------
SUBSCRIBE = Route("POST", "/call-events/v1/subscriptions", API_CALL_EVENTS, "A")  # -> 207, a status per key
SUBSCRIBED_EVENTS = ("STARTING", "ACTIVE", "ENDING")
SOURCE_CALL_EVENTS = "call-events"
TYPE_CALL_STATE = "call-state"
STATE_STARTING, STATE_ACTIVE, STATE_ENDING = "STARTING", "ACTIVE", "ENDING"
DIRECTION_INBOUND, DIRECTION_OUTBOUND = "INBOUND", "OUTBOUND"
# Participant statuses seen on the live API (grade C); the full list is not published.
STATUS_RINGING, STATUS_CONNECTED = "RINGING", "CONNECTED"
# Recovery of missed states, grade D (one unverified summary): the states of one conversation space
# between two sequence numbers, as {"items": [<call-state content>, ...]}. G15 only says "fetch the
# missing states from the conversation-spaces endpoint".
CONVERSATION_SPACE_EVENTS = Route(
    "GET", "/call-events/v1/conversation-spaces/{conversation_space_id}/events", API_CALL_EVENTS, "D"
)

# --- Devices and calls (web calls) ----------------------------------------------------------------
WEB_CALLS = "/web-calls/v1"
DEVICE_CREATE = Route("POST", WEB_CALLS + "/devices", API_WEB_CALLS, "C")
DEVICE_DELETE = Route("DELETE", WEB_CALLS + "/devices/{device_id}", API_WEB_CALLS, "D")
EXTENSION_CREATE = Route("POST", WEB_CALLS + "/devices/{device_id}/extensions", API_WEB_CALLS, "C")
CALL_CREATE = Route("POST", WEB_CALLS + "/calls", API_WEB_CALLS, "C")  # we send the offer, get the answer
CALL_HANGUP = Route("DELETE", WEB_CALLS + "/calls/{call_id}", API_WEB_CALLS, "C")  # 404: already gone
CALL_ANSWER = Route("POST", WEB_CALLS + "/calls/{call_id}/answer", API_WEB_CALLS, "D")  # see inbound.py
CALL_HOLD = Route("POST", WEB_CALLS + "/calls/{call_id}/hold", API_WEB_CALLS, "D")
CALL_UNHOLD = Route("POST", WEB_CALLS + "/calls/{call_id}/unhold", API_WEB_CALLS, "D")
CALL_DTMF = Route("POST", WEB_CALLS + "/calls/{call_id}/dtmf", API_WEB_CALLS, "D")
CALL_BLIND_TRANSFER = Route("POST", WEB_CALLS + "/calls/{call_id}/blind-transfer", API_WEB_CALLS, "D")
CALL_WARM_TRANSFER = Route("POST", WEB_CALLS + "/calls/{call_id}/warm-transfer", API_WEB_CALLS, "D")
CALL_MERGE = Route("POST", WEB_CALLS + "/calls/{call_id}/merge", API_WEB_CALLS, "D")

ROUTES = (
    CHANNEL_CREATE,
    CHANNEL_REFRESH,
    CHANNEL_DELETE,
    SUBSCRIBE,
    CONVERSATION_SPACE_EVENTS,
    DEVICE_CREATE,
    DEVICE_DELETE,
    EXTENSION_CREATE,
    CALL_CREATE,
    CALL_HANGUP,
    CALL_ANSWER,
    CALL_HOLD,
    CALL_UNHOLD,
    CALL_DTMF,
    CALL_BLIND_TRANSFER,
    CALL_WARM_TRANSFER,
    CALL_MERGE,
)

SOURCE_WEB_CALLS = "WebRTC"  # web-calls notifications (grade B: the reference's overview)
TYPE_INCOMING = "incoming"
DEVICE_PLATFORM = "INTEGRATOR"  # grade C


# --- bodies ---------------------------------------------------------------------------------------
def channel_body() -> dict[str, str]:
    """Create and refresh send the same body."""
    return {"channelType": CHANNEL_TYPE_WEBSOCKET}


def subscribe_body(channel_id: str, account_keys: list[str]) -> dict[str, Any]:
    return {
        "channelId": channel_id,
        "accountKeys": [{"id": key, "events": list(SUBSCRIBED_EVENTS)} for key in account_keys],
    }


def device_body(device_id: str, channel_id: str, app_id: str, app_version: str) -> dict[str, Any]:
    """A device whose incoming calls and session messages come on our notification channel (grade C)."""
    return {
        "clientInformation": {
            "deviceId": device_id,
            "appId": app_id,
            "appVersion": app_version,
            "platform": DEVICE_PLATFORM,
        },
        "callbackReference": {"incomingCallChannelId": channel_id, "sessionManagementChannelId": channel_id},
    }


def extension_body(organization_id: str, extension: str) -> dict[str, Any]:
    return {"organizationId": organization_id, "extensions": [{"number": extension}]}


def call_body(
    *, device_id: str, organization_id: str, extension: str, dial_string: str, channel_id: str, sdp: str
) -> dict[str, str]:
    """Place a web call: `sdp` is OUR offer; the answer comes back in the response (grade C)."""
    return {
        "deviceId": device_id,
        "organizationId": organization_id,
        "extensionNumber": extension,
        "dialString": dial_string,
        "inCallChannelId": channel_id,
        "sdp": sdp,
    }


def dial_body(dial_string: str) -> dict[str, str]:
    return {"dialString": dial_string}


def refer_body(refer_id: str) -> dict[str, str]:
    """Warm transfer and merge name the other web call (the consult call) by its id."""
    return {"referId": refer_id}


def dtmf_body(tone: str) -> dict[str, str]:
    return {"tone": tone}


def recovery_query(sequence_from: int, sequence_to: int) -> dict[str, str]:
    return {"sequenceFrom": str(sequence_from), "sequenceTo": str(sequence_to)}


# --- answers --------------------------------------------------------------------------------------
def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Channel:
    """A created notification channel: where to listen and for how long (seconds)."""

    channel_id: str
    url: str
    lifetime: int


def channel_of(body: Any) -> Channel | None:
    """The 201 answer: {"channelId", "channelData": {"channelURL"}, "channelLifetime"}; None when unusable."""
    body = _dict(body)
    channel_id, url = _str(body.get("channelId")), _str(_dict(body.get("channelData")).get("channelURL"))
    lifetime = body.get("channelLifetime")
    if not channel_id or not url or not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
        return None
    return Channel(channel_id, url, lifetime)


def channel_lifetime(body: Any) -> int | None:
    """A refresh answer's new lifetime, when it says one."""
    lifetime = _dict(body).get("channelLifetime")
    return lifetime if isinstance(lifetime, int) and not isinstance(lifetime, bool) and lifetime > 0 else None


@dataclass(frozen=True)
class KeyStatus:
    account_key: str
    status: int
    error_code: str
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def subscription_statuses(body: Any, account_keys: list[str]) -> list[KeyStatus]:
    """The 207's status per account key asked for; a key the answer leaves out counts as failed."""
    found: dict[str, KeyStatus] = {}
    items = _dict(body).get("accountKeys")
    for item in items if isinstance(items, list) else []:
        item = _dict(item)
        key, status = _str(item.get("id")), item.get("status")
        if key:
            found[key] = KeyStatus(
                key,
                status if isinstance(status, int) else 0,
                _str(item.get("errorCode")),
                _str(item.get("message")),
            )
    return [found.get(key) or KeyStatus(key, 0, "MISSING", "not in the answer") for key in account_keys]


def device_id_of(body: Any) -> str:
    """The device answer names the device as clientInformation.deviceId (grade C)."""
    body = _dict(body)
    return _str(_dict(body.get("clientInformation")).get("deviceId")) or _str(body.get("id"))


@dataclass(frozen=True)
class PlacedCall:
    call_id: str
    leg_id: str
    sdp: str  # GoTo's SDP answer to our offer


def placed_call_of(body: Any) -> PlacedCall | None:
    body = _dict(body)
    call_id, sdp = _str(body.get("id")), _str(body.get("sdp"))
    if not call_id or not sdp.strip():
        return None
    return PlacedCall(call_id, _str(body.get("legId")), sdp)


def error_detail(body: Any) -> tuple[str, str]:
    """(errorCode, message) of GoTo's error body {"reference", "errorCode", "message", "constraintViolations"}."""
    body = _dict(body)
    return _str(body.get("errorCode")), _str(body.get("message"))


# --- notifications --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Notification:
    source: str
    type: str
    content: dict
    timestamp: str


def notification_of(message: Any) -> Notification | None:
    """A frame from the channel: {"data": {"source", "type", "content"}, ...} (grade A).

    Web-calls notifications are documented bare ({"source": "WebRTC", "type", "content", ...}, grade B);
    whether the socket wraps them in "data" too is not published, so both forms are read.
    """
    message = _dict(message)
    inner = message.get("data") if isinstance(message.get("data"), dict) else message
    kind = _str(inner.get("type"))
    if not kind:
        return None
    timestamp = _str(inner.get("timestamp")) or _str(message.get("timestamp"))
    return Notification(_str(inner.get("source")), kind, _dict(inner.get("content")), timestamp)


@dataclass(frozen=True)
class Participant:
    id: str
    kind: str  # type.value: PHONE_NUMBER, LINE, ...
    status: str  # status.value: RINGING, CONNECTED, ...
    number: str


@dataclass(frozen=True)
class CallState:
    conversation_space_id: str
    account_key: str
    direction: str
    dial_string: str
    state_id: str
    type: str  # STARTING, ACTIVE, ENDING
    sequence: int
    timestamp: str
    participants: tuple[Participant, ...]


def _participant(item: Any) -> Participant | None:
    item = _dict(item)
    kind = _dict(item.get("type"))
    number = (
        _str(kind.get("number"))
        or _str(_dict(kind.get("callee")).get("number"))
        or _str(_dict(kind.get("caller")).get("number"))
    )
    pid = _str(item.get("id"))
    if not pid:
        return None
    return Participant(pid, _str(kind.get("value")), _str(_dict(item.get("status")).get("value")), number)


def call_state_of(content: Any) -> CallState | None:
    """A call-state content {metadata {...}, state {id, type, sequenceNumber, timestamp, participants}}."""
    content = _dict(content)
    metadata, state = _dict(content.get("metadata")), _dict(content.get("state"))
    space, kind, sequence = (
        _str(metadata.get("conversationSpaceId")),
        _str(state.get("type")),
        state.get("sequenceNumber"),
    )
    if not space or not kind or not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
        return None
    items = state.get("participants")
    participants = tuple(p for p in map(_participant, items if isinstance(items, list) else []) if p is not None)
    return CallState(
        conversation_space_id=space,
        account_key=_str(metadata.get("accountKey")),
        direction=_str(metadata.get("direction")),
        dial_string=_str(metadata.get("dialString")),
        state_id=_str(state.get("id")),
        type=kind,
        sequence=sequence,
        timestamp=_str(state.get("timestamp")),
        participants=participants,
    )


def recovered_states(body: Any) -> list[Any]:
    """The conversation-space answer's items (grade D): call-state contents."""
    items = _dict(body).get("items")
    return items if isinstance(items, list) else []
