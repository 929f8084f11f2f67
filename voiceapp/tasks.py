"""Platform-wide scheduled jobs."""

from celery import shared_task

from core.retention import retention_apply


@shared_task(acks_late=True, reject_on_worker_lost=True)
def apply_retention() -> dict[str, int]:
    """Daily: delete what the retention policy (core/retention.py and each app's retention.py) no longer keeps (idempotent)."""
    return retention_apply()
