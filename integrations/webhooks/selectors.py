"""Reads for webhook endpoints and deliveries, always for one tenant."""

from django.db.models import Prefetch

from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenants.models import Tenant


def webhook_endpoint_list(*, tenant: Tenant):
    return WebhookEndpoint.objects.for_tenant(tenant).order_by("created_at", "id")


def webhook_delivery_list(*, tenant: Tenant, endpoint: WebhookEndpoint | None = None, status: str | None = None):
    """Newest first, each with its attempts in order (one extra query for a page, whatever its size)."""
    deliveries = WebhookDelivery.objects.for_tenant(tenant).order_by("-created_at", "-id")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    attempts = Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
    return deliveries.prefetch_related(attempts)
