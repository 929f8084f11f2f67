"""Webhook tasks (the webhooks queue). Thin: each loads rows by id and calls one service.

Both are idempotent, so they ack late and are re-queued if their worker dies: a delivery is claimed
before each attempt, and a task finding it delivered, failed, not yet due or taken does nothing.
"""

from celery import shared_task
from django.conf import settings

from integrations.webhooks import delivery


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    rate_limit=settings.WEBHOOK_QUEUE_RATE_LIMIT or None,
)
def webhook_deliver(delivery_id: str, token: str | None = None) -> str | None:
    """Attempt one stored delivery (its retries are scheduled on the row, not in the broker)."""
    return delivery.webhook_deliver(delivery_id=delivery_id, token=token)


@shared_task(name="webhooks.dispatch_due", acks_late=True, reject_on_worker_lost=True)
def webhooks_dispatch_due() -> int:
    """Every minute: queue the deliveries whose retry time has come, or whose queued task was lost."""
    return delivery.webhooks_dispatch_due()
