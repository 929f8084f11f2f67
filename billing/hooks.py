"""What billing tells the lower apps, registered at start-up so that they never import billing.

- the API's rate limiter asks for a tenant's plan limits (`tenants.api.ratelimit`);
- retention learns what to delete of usage (`core.retention`);
- calls ask whether a tenant may place calls and how many at once, and meter each call as it ends
  (`calls.policies`).
"""

from billing import retention, selectors, services
from calls import policies
from tenants.api import ratelimit


def plan_limits(tenant) -> tuple[int, int] | None:
    plan = selectors.plan_for_tenant(tenant=tenant)
    return (plan.api_rate_limit_per_minute, plan.api_burst_limit) if plan else None


def admission(tenant) -> policies.Admission:
    return policies.Admission(
        may_place_calls=selectors.tenant_may_place_calls(tenant=tenant),
        max_concurrent_calls=selectors.max_concurrent_calls(tenant=tenant),
    )


def meter(call) -> None:
    services.usage_record_for_call(call=call)


def install() -> None:
    ratelimit.register_plan_limits(plan_limits)
    retention.install()
    policies.register(admission=admission, ended=meter)
