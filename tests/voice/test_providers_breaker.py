"""The per-provider circuit breaker (docs/voice-pipeline.md#circuit-breakers) on a hand-driven clock."""

from voice.engines.breaker import CircuitBreaker, breaker_for, reset_breakers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("claude:test", failure_threshold=3, recovery_timeout=60, clock=clock)


def test_opens_after_threshold_consecutive_failures():
    clock = Clock()
    breaker = _breaker(clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between starts the count again
    breaker.record_failure()
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == ("closed", True)
    breaker.record_failure()
    assert (breaker.state, breaker.allow()) == ("open", False)


def test_half_open_lets_one_trial_through_after_the_recovery_timeout():
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 59
    assert not breaker.allow()
    clock.now += 1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # nobody else while it runs
    breaker.record_success()
    assert (breaker.state, breaker.allow()) == ("closed", True)


def test_failed_trial_opens_it_again_for_a_full_timeout():
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 60
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 59
    assert not breaker.allow()


def test_a_trial_that_never_reports_does_not_block_recovery():
    clock = Clock()
    breaker = _breaker(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 60
    assert breaker.allow()  # this call hangs up before its request finishes
    clock.now += 60
    assert breaker.allow()


def test_registry_uses_the_seed_thresholds_and_is_per_endpoint():
    reset_breakers()
    deepgram, claude, chatterbox = (
        breaker_for("deepgram", "a"),
        breaker_for("anthropic", "m"),
        breaker_for("chatterbox"),
    )
    assert (deepgram.failure_threshold, deepgram.recovery_timeout) == (5, 30.0)
    assert (claude.failure_threshold, claude.recovery_timeout) == (3, 60.0)
    assert (chatterbox.failure_threshold, chatterbox.recovery_timeout) == (3, 30.0)
    assert breaker_for("deepgram", "a") is deepgram
    assert breaker_for("deepgram", "b") is not deepgram
    reset_breakers()
