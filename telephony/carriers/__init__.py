"""Carrier adapters: one package per carrier, each the only code that speaks its carrier's protocol (docs/carriers.md).

`base.Carrier` is the call control a bridge uses (answer, hang up, hold/resume, transfers, conference). Each
adapter package has an `install()` that registers what it gives the apps below it (its outbound
`calls.carriers.Dialer`, a vault resealer, ...), so the calls app dials without importing a carrier. Adding a
carrier is adding its package and its name to `ADAPTERS`: `TelephonyConfig.ready()` installs them all.
"""

import importlib

ADAPTERS = ("telephony.carriers.goto", "telephony.carriers.twilio", "telephony.carriers.browser")

_installed: list[str] = []


def install(package: str) -> None:
    """Import one adapter package and run its `install()`, once per process."""
    if package in _installed:
        return
    importlib.import_module(package).install()
    _installed.append(package)


def install_all(packages: tuple[str, ...] = ADAPTERS) -> None:
    for package in packages:
        install(package)


def installed() -> tuple[str, ...]:
    """The adapter packages installed in this process, in the order they were."""
    return tuple(_installed)
