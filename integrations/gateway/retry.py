"""Retry rules (exponential backoff with jitter, Retry-After), driven by tenacity.

tenacity runs the loop (attempt counting, stop, sleeping through an injectable coroutine); this module
supplies the policy: which outcomes are retried, and how long to wait before the next attempt.
"""

import random as _random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import AsyncRetrying, Future, RetryCallState, stop_after_attempt

from integrations.config import RetryPolicy

SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Raised before any byte of the request left this host: repeating them cannot duplicate a side effect,
# so they are retried for every method, POST without an idempotency key included.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The request may have reached the backend: retried only when it is safe to repeat.
MAYBE_SENT_ERRORS = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
JITTERS = ("equal", "full", "none")


def safe_to_repeat(method: str, idempotency_key: str | None) -> bool:
    """Idempotent methods, or any method carrying an idempotency key."""
    return method.upper() in SAFE_METHODS or bool(idempotency_key)


def backoff(policy: RetryPolicy, retry_number: int, rand: Callable[[], float], jitter: str = "equal") -> float:
    """The wait before retry `retry_number` (1 = the second attempt): initial × multiplier^(n-1), capped.

    "equal" jitter waits between half and all of that value, "full" between zero and all of it: both
    spread the retries of many callers, and neither ever exceeds max_backoff.
    """
    base = min(policy.max_backoff, policy.initial_backoff * policy.multiplier ** (retry_number - 1))
    if jitter == "full":
        return base * rand()
    if jitter == "equal":
        return base / 2 + base / 2 * rand()
    return base


def retry_after_seconds(response: httpx.Response | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP-date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip() if response is not None else ""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or (lambda: datetime.now(UTC)))()).total_seconds())


def is_retryable(outcome, policy: RetryPolicy, safe: bool) -> bool:
    """Whether an attempt's outcome (a response or a transport exception) deserves another attempt."""
    if isinstance(outcome, NOT_SENT_ERRORS):
        return True
    if isinstance(outcome, MAYBE_SENT_ERRORS):
        return safe
    if isinstance(outcome, httpx.Response):
        return safe and outcome.status_code in policy.retryable_codes
    return False  # our own errors (config, OAuth token endpoint) and anything unexpected


def outcome_of(state: RetryCallState) -> Future:
    """The last attempt's outcome: tenacity sets it before it calls wait, retry, stop or the error callback."""
    assert state.outcome is not None
    return state.outcome


class _Wait:
    """tenacity wait: the backoff, stretched to a Retry-After header, never above max_backoff."""

    def __init__(self, policy: RetryPolicy, rand: Callable[[], float], jitter: str):
        self.policy, self.rand, self.jitter = policy, rand, jitter

    def __call__(self, state: RetryCallState) -> float:
        delay = backoff(self.policy, state.attempt_number, self.rand, self.jitter)
        outcome = outcome_of(state)
        response = None if outcome.failed else outcome.result()
        hint = retry_after_seconds(response)
        if hint is not None:
            delay = max(delay, hint)
        return min(delay, self.policy.max_backoff)


def _last_outcome(state: RetryCallState):
    # Out of attempts: hand back the last response (or raise the last exception) instead of RetryError.
    return outcome_of(state).result()


def retrying(
    policy: RetryPolicy,
    *,
    safe: bool,
    sleep: Callable[[float], Awaitable[None]],
    rand: Callable[[], float] | None = None,
    jitter: str = "equal",
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """A tenacity controller for one gateway call under `policy`."""

    def should_retry(state: RetryCallState) -> bool:
        last = outcome_of(state)
        outcome = last.exception() if last.failed else last.result()
        return is_retryable(outcome, policy, safe)

    return AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=_Wait(policy, rand or _random.random, jitter),
        retry=should_retry,
        sleep=sleep,
        before_sleep=on_retry,
        retry_error_callback=_last_outcome,
        reraise=True,
    )
