"""Scheduled call housekeeping (seed 3.4.4)."""

from celery import shared_task

from calls import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def cleanup_sessions() -> int:
    """Weekly: close calls whose session died without ending them."""
    return services.calls_end_stale()
