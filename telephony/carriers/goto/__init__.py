"""The GoToConnect PBX: call control over REST (`client`) and call events over a WebSocket (`events`).

Every wire format (paths, field names, event names, subscription messages) is in `wire`, so the
client can be checked against GoToConnect's real API in one place. Nothing else in the project
talks to GoToConnect.
"""

from telephony.carriers.goto.client import (
    GoToConfig,
    GoToConnectClient,
    GoToConnectError,
    TokenProvider,
    dial_string,
)
from telephony.carriers.goto.events import EventDeduplicator, EventSubscriber, PbxEvent

__all__ = [
    "EventDeduplicator",
    "EventSubscriber",
    "GoToConfig",
    "GoToConnectClient",
    "GoToConnectError",
    "PbxEvent",
    "TokenProvider",
    "dial_string",
]
