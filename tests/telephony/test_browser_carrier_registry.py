"""The carrier registry: adding a carrier is one adapter package with an `install()`, named in `ADAPTERS`.

`TelephonyConfig.ready()` installs every adapter once; what an adapter registers there (its dialer) is what
the calls app finds when it dials, without importing a carrier (docs/carriers.md).
"""

import sys
import types

from calls import carriers as call_carriers
from calls.models import Call
from integrations import vault
from telephony import carriers
from telephony.carriers.goto.dialer import GoToDialer
from telephony.carriers.twilio.dialer import TwilioDialer
from telephony.models import PhoneNumber


def placed_from(provider: str) -> Call:
    return Call(phone_number=PhoneNumber(e164="+15559876543", provider=provider))


def test_every_adapter_is_installed_once_at_start_up():
    assert carriers.ADAPTERS == (
        "telephony.carriers.goto",
        "telephony.carriers.twilio",
        "telephony.carriers.browser",
    )
    assert carriers.installed() == carriers.ADAPTERS
    goto, twilio = call_carriers.dialer_for(placed_from("gotoconnect")), call_carriers.dialer_for(placed_from("twilio"))
    assert (type(goto), type(twilio)) == (GoToDialer, TwilioDialer)
    assert "GoTo connections" in vault.RESEALERS

    carriers.install_all()  # a second start-up (ready() run again) registers nothing twice

    assert carriers.installed() == carriers.ADAPTERS
    assert call_carriers.dialer_for(placed_from("gotoconnect")) is goto
    assert call_carriers.dialer_for(placed_from("twilio")) is twilio


def test_a_browser_test_call_has_no_dialer():
    assert call_carriers.dialer_for(Call()) is None  # no number: nothing to dial from
    assert call_carriers.dialer_for(placed_from("browser")) is None


class DummyDialer:
    def available(self) -> bool:
        return True

    def dial(self, request: call_carriers.DialRequest) -> str:
        return f"dummy-{request.call_id}"

    def hang_up(self, external_call_id: str) -> None:
        return None


def test_a_new_adapter_installed_through_the_same_path_is_found_by_the_dialer_lookup(monkeypatch):
    dialer = DummyDialer()
    package = types.ModuleType("dummy_carrier")
    package.install = lambda: call_carriers.register_dialer("dummy", dialer)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dummy_carrier", package)
    monkeypatch.setattr(carriers, "_installed", list(carriers.installed()))
    monkeypatch.setattr(call_carriers, "_dialers", dict(call_carriers._dialers))
    assert call_carriers.dialer_for(placed_from("dummy")) is None

    carriers.install_all((*carriers.ADAPTERS, "dummy_carrier"))

    assert call_carriers.dialer_for(placed_from("dummy")) is dialer
    assert carriers.installed() == (*carriers.ADAPTERS, "dummy_carrier")
    assert type(call_carriers.dialer_for(placed_from("twilio"))) is TwilioDialer  # the others unchanged
