"""Per-provider circuit breakers, shared by every call in the process (docs/voice-pipeline.md#circuit-breakers).

The framework's fallback adapters keep availability per adapter, that is per call: each new call
would try a provider that is down and wait for it to fail before falling back, and a call that
fell back re-sends its own request to the failed provider as a recovery probe on every turn. A
process-wide breaker fixes both: once a provider has failed `failure_threshold` times in a row,
every call skips it without touching the network for `recovery_timeout` seconds, then one trial
request is let through (half-open) and its outcome closes or re-opens the breaker.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.engines import breaker_policies

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# Seed 12.2: (failure_threshold, recovery_timeout seconds) per provider, declared in the engine registry.
POLICIES = breaker_policies()


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int
    recovery_timeout: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial_started_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.clock() - self.opened_at >= self.recovery_timeout else OPEN

    def allow(self) -> bool:
        """May a request go to the provider now? In half-open state, one trial at a time."""
        with self._lock:
            state = self.state
            if state == CLOSED:
                return True
            if state == OPEN:
                return False
            now = self.clock()
            # A trial that never reported back (the call hung up) must not block recovery forever.
            if self.trial_started_at is not None and now - self.trial_started_at < self.recovery_timeout:
                return False
            self.trial_started_at = now
            return True

    def record_success(self) -> None:
        with self._lock:
            if self.opened_at is not None:
                logger.info("circuit breaker %s closed", self.name)
            self.failures, self.opened_at, self.trial_started_at = 0, None, None

    def record_failure(self) -> None:
        with self._lock:
            self.failures += 1
            self.trial_started_at = None
            if self.opened_at is not None or self.failures >= self.failure_threshold:
                if self.opened_at is None:
                    logger.warning("circuit breaker %s opened after %d failures", self.name, self.failures)
                self.opened_at = self.clock()


_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker_for(provider: str, endpoint: str = "") -> CircuitBreaker:
    """The process-wide breaker of one provider endpoint (a model, for LLMs: an overloaded Sonnet
    must not block Haiku on the same API)."""
    key = f"{provider}:{endpoint}"
    with _registry_lock:
        if key not in _registry:
            threshold, timeout = POLICIES.get(provider, (3, 30.0))
            _registry[key] = CircuitBreaker(key, failure_threshold=threshold, recovery_timeout=timeout)
        return _registry[key]


def all_breakers() -> dict[str, CircuitBreaker]:
    """Every breaker created so far, by key (for health and metrics)."""
    with _registry_lock:
        return dict(_registry)


def reset_breakers() -> None:
    """Forget every breaker (tests; a deploy starts fresh anyway)."""
    with _registry_lock:
        _registry.clear()
