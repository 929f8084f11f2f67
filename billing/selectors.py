"""Reads for plans and usage."""

from billing.models import Plan, Subscription
from tenants.models import Tenant


def plan_for_tenant(*, tenant: Tenant) -> Plan | None:
    """The tenant's subscribed plan, else the platform's default plan, else None."""
    subscription = Subscription.objects.select_related("plan").filter(tenant=tenant).first()
    if subscription is not None:
        return subscription.plan
    return Plan.objects.filter(is_default=True).first()
