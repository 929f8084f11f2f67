"""Shortcuts for the webhook tests."""

from django.db import transaction
from django.utils import timezone

from integrations.models import WebhookDelivery
from integrations.webhooks import delivery, outbox, services


def endpoint_for(tenant, url, event_types=("*",), **fields):
    """(endpoint, its secret)."""
    issued = services.webhook_endpoint_create(tenant=tenant, url=url, event_types=list(event_types), **fields)
    return issued.endpoint, issued.secret


def emit(tenant, event_type="call.ended", data=None):
    with transaction.atomic():
        return outbox.webhook_emit(tenant_id=tenant.pk, event_type=event_type, data=data or {"call_id": "c1"})


def send_due() -> int:
    return delivery.webhooks_dispatch_due(inline=True)


def make_due(*deliveries) -> None:
    WebhookDelivery.objects.dangerously_unscoped().filter(pk__in=[d.pk for d in deliveries]).update(
        next_attempt_at=timezone.now()
    )


def fresh(row):
    row.refresh_from_db()
    return row
