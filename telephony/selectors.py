"""Reads for phone numbers."""

from telephony.models import PhoneNumber
from tenants.models import Tenant


def phone_number_list(*, tenant: Tenant):
    return PhoneNumber.objects.for_tenant(tenant).order_by("e164")


def sole_active_number(*, tenant_id, provider: str) -> str:
    """The tenant's one active number with `provider` (its E.164), or "" when it has none or several."""
    numbers = list(
        PhoneNumber.objects.for_tenant(tenant_id)
        .filter(provider=provider, status=PhoneNumber.Status.ACTIVE)
        .values_list("e164", flat=True)[:2]
    )
    return numbers[0] if len(numbers) == 1 else ""
