"""Tenant URLs on the platform's own networks are refused in production (SSRF), before anything is sent."""

import pytest

from integrations import netguard
from integrations.gateway import GatewayConfigError
from tests.gateway.conftest import make_service
from tests.gateway.server import Reply


@pytest.fixture
def production(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    netguard.forget()
    yield
    netguard.forget()


async def test_a_loopback_backend_is_refused_in_production(production, gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    with pytest.raises(GatewayConfigError) as caught:
        await gateway.request(make_service(server.url), tenant_id=tenant_id, resolver=resolver, path="/r")
    assert caught.value.code == "address_not_allowed"
    assert (
        caught.value.message
        == "127.0.0.1 is a private, loopback or link-local address, which the platform does not call."
    )
    assert server.hits("/r") == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://10.1.2.3/x", False),
        ("http://192.168.0.10/x", False),
        ("http://169.254.169.254/latest/meta-data", False),  # cloud metadata
        ("http://[::1]:8000/", False),
        ("http://8.8.8.8/", True),
    ],
)
def test_which_addresses_are_private(production, url, allowed):
    assert (netguard.address_problem(url) == "") is allowed


def test_local_networks_are_allowed_when_configured(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True
    assert netguard.address_problem("http://127.0.0.1:9/") == ""
