"""Carrier adapters: one package per carrier, each the only code that speaks its carrier's protocol.

`base.Carrier` is the call control a bridge uses (answer, hang up, hold/resume, transfers, conference);
each adapter also registers its outbound `calls.carriers.Dialer` at start-up (`install()`), so the calls
app dials without importing a carrier.
"""
