"""Reads for phone numbers."""

from telephony.models import PhoneNumber
from tenants.models import Tenant


def phone_number_list(*, tenant: Tenant):
    return PhoneNumber.objects.for_tenant(tenant).order_by("e164")
