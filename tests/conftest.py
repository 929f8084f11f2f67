"""Shared fixtures: two tenants (ours and another's), users, staff, clients."""

import pytest
from django.core.cache import cache

from tenants.api import ratelimit
from tenants.models import Membership
from tests import factories
from tests.api.conftest import key_client

pytest_plugins = ["tests.live_server"]  # `asgi_server`: the ASGI app served on 127.0.0.1 (browser and websocket tests)


@pytest.fixture(autouse=True)
def _clear_cache():
    # The cache may be a real Redis shared across tests: start every test from an empty one
    # (clear() empties the whole Redis database, rate-limit counters included).
    cache.clear()
    ratelimit.forget_limits()
    yield
    cache.clear()


@pytest.fixture
def tenant(db):
    return factories.TenantFactory(name="Acme Dental", slug="acme-dental")


@pytest.fixture
def other_tenant(db):
    return factories.TenantFactory(name="Globex Clinic", slug="globex-clinic")


@pytest.fixture
def owner(tenant):
    user = factories.UserFactory(username="alice")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def staff_user(db):
    return factories.UserFactory(username="staff", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def api_client(tenant):
    """An API client with an admin key of our tenant."""
    return key_client(tenant)


@pytest.fixture
def other_api_client(other_tenant):
    return key_client(other_tenant)


@pytest.fixture
def make_client():
    return key_client
