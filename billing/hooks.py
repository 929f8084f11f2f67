"""What billing tells the lower apps, registered at start-up so that they never import billing.

- the API's rate limiter asks for a tenant's plan limits (`tenants.api.ratelimit`);
- retention learns what to delete of usage (`core.retention`).
"""

from billing import retention, selectors
from tenants.api import ratelimit


def plan_limits(tenant) -> tuple[int, int] | None:
    plan = selectors.plan_for_tenant(tenant=tenant)
    return (plan.api_rate_limit_per_minute, plan.api_burst_limit) if plan else None


def install() -> None:
    ratelimit.register_plan_limits(plan_limits)
    retention.install()
