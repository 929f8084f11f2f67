"""GoTo Connect as its published API is (docs/telephony.md#goto-connect).

- `wire`: every route, body and payload, each with its evidence grade;
- `api`: the REST client of one connected account (token, per-API rate limit, retries, errors);
- `channel`: the account's notification channel and call-events subscription, kept alive;
- `callstate`: call states de-duplicated, ordered, recovered and translated into carrier events;
- `inbound`: answering an inbound web call (unverified: the one step no source describes);
- `line`: one account in one media worker: channel, device, extension, and the carrier its calls use;
- `dialer`: outbound calls handed to a media worker, where their media leg lives;
- `grant`, `auth`: the tenant's OAuth consent and its tokens.

Nothing else in the project talks to GoTo Connect.
"""

from telephony.carriers.goto.config import GoToConnectError
from telephony.carriers.goto.line import Account, GoToLine, dial_string

__all__ = ["Account", "GoToConnectError", "GoToLine", "dial_string", "install"]


def install() -> None:
    """Register GoTo Connect with the apps below: the dialer of `gotoconnect` numbers, the resealer of its tokens."""
    from calls import carriers
    from integrations import vault
    from telephony.carriers.goto.dialer import GoToDialer
    from telephony.carriers.goto.grant import connections_reseal
    from telephony.models import PhoneNumber

    carriers.register_dialer(PhoneNumber.Provider.GOTOCONNECT, GoToDialer())
    vault.register_resealer("GoTo connections", connections_reseal)
