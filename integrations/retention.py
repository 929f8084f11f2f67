"""What retention deletes of integrations (core.retention): finished webhook deliveries."""

from core.retention import Rule, register
from integrations.models import WebhookDelivery


def _deliveries(now, cutoff):
    finished = WebhookDelivery.objects.dangerously_unscoped().exclude(status=WebhookDelivery.Status.PENDING)
    return finished.filter(created_at__lt=cutoff("webhook_deliveries"))


def install() -> None:
    register(Rule("webhook_deliveries", _deliveries))
