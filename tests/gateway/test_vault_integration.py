"""The gateway with the real credential vault: secrets stored encrypted, resolved per tenant at call time."""

import json

import pytest

from integrations import services
from integrations.gateway import GatewayConfigError
from integrations.vault import secret_resolver
from tests.gateway.conftest import make_service
from tests.gateway.test_audit import call, echo, rows

TOKEN = "tkt-live-5f0c9a7e3b21d846"


def test_the_gateway_resolves_vault_secrets_per_tenant_and_never_records_them(server, tenant, other_tenant):
    services.credential_create(
        tenant=tenant, name="TICKETING_TOKEN", provider="http", secret={"value": TOKEN}, verify=False
    )
    server.script("/r", echo)
    service = make_service(
        server.url,
        name="ticketing",
        headers={"Authorization": "Bearer ${TICKETING_TOKEN}"},
        logging={"include_headers": True, "include_payload": True},
    )
    response = call(service, tenant, secret_resolver(tenant), path="/r", json={"echo": TOKEN})
    assert server.hits("/r")[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert response.json()["auth"] == f"Bearer {TOKEN}"  # the caller gets the real answer...
    (row,) = rows(tenant)
    assert TOKEN not in json.dumps(
        [row.url, row.request_headers, row.request_body, row.response_body]
    )  # ...the audit not
    with pytest.raises(GatewayConfigError, match=r"\$\{TICKETING_TOKEN\} .* not in this tenant's vault"):
        call(service, other_tenant, secret_resolver(other_tenant), path="/r")
    assert len(server.hits("/r")) == 1
    assert [r.outcome for r in rows(other_tenant)] == ["config_error"]
