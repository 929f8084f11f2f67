"""Reads for the integrations app, always for one tenant."""

from django.db.models import OuterRef, Subquery

from integrations.models import BackendService, OutboundRequest, ProviderCredential
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


def backend_service_list_with_last_call(*, tenant: Tenant):
    """The services, each annotated with its latest gateway call (`last_outcome`, `last_status_code`, `last_called_at`).

    The circuit breaker's live state sits in Redis or in one process's memory; the audit rows are what
    every process shares, and a call refused by an open breaker is recorded there as `circuit_open`.
    """
    latest = OutboundRequest.objects.for_tenant(tenant).filter(service=OuterRef("name")).order_by("-created_at")
    return backend_service_list(tenant=tenant).annotate(
        last_outcome=Subquery(latest.values("outcome")[:1]),
        last_status_code=Subquery(latest.values("status_code")[:1]),
        last_called_at=Subquery(latest.values("created_at")[:1]),
    )
