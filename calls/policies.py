"""What the billing app decides for calls, registered at start-up so that calls never imports billing.

- `admission(tenant)`: may the tenant place or take calls now (a plan, or credit left), and how many at once;
- `call_ended(call)`: runs inside the transaction that ends a call (billing meters it there, once).

Without billing installed, every tenant may call, without a concurrency limit, and nothing is metered.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    may_place_calls: bool
    max_concurrent_calls: int | None  # None: no limit


_admission: Callable[[object], Admission] | None = None
_ended: list[Callable[[object], None]] = []


def register(*, admission: Callable[[object], Admission] | None = None, ended: Callable | None = None) -> None:
    global _admission
    if admission is not None:
        _admission = admission
    if ended is not None and ended not in _ended:
        _ended.append(ended)


def admission(tenant) -> Admission:
    return _admission(tenant) if _admission is not None else Admission(True, None)


def call_ended(call) -> None:
    for hook in _ended:
        hook(call)
