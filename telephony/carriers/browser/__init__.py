"""The browser test call as a carrier (docs/carriers.md): its protocol is the test-call socket, `/ws/v1/test-calls`.

- `wire`: the messages the browser is sent about its call, and the call's carrier id (`browser:<call uuid>`);
- `carrier`: the call control the bridge uses (`telephony.carriers.base.Carrier`): answer, hang up,
  transfers shown to the browser and reported as carrier events; no dialling, conference or hold.

The socket itself is `telephony.consumers.BrowserCallConsumer`; its media leg is WebRTC (`PhoneLeg`).
"""

from telephony.carriers.browser.carrier import BrowserCallError, BrowserCarrier

__all__ = ["BrowserCallError", "BrowserCarrier", "install"]


def install() -> None:
    """Nothing to register: a test call is placed from its socket, never dialled, so it has no `Dialer`."""
