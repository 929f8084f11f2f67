"""Reads for the integrations app, always for one tenant."""

from integrations.models import BackendService, ProviderCredential
from tenants.models import Tenant

# --- credentials


def credential_list(*, tenant: Tenant):
    return ProviderCredential.objects.for_tenant(tenant).order_by("name", "id")


def credential_get(*, tenant: Tenant, credential_id) -> ProviderCredential | None:
    return credential_list(tenant=tenant).filter(pk=credential_id).first()


def credential_get_by_name(*, tenant: Tenant, name: str) -> ProviderCredential | None:
    return credential_list(tenant=tenant).filter(name=name).first()


# --- backend services


def backend_service_list(*, tenant: Tenant):
    return BackendService.objects.for_tenant(tenant).order_by("name", "id")
