"""API fixtures: clients authenticated by API key for our tenant and for another tenant."""

import pytest
from rest_framework.test import APIClient

from tenants.services import api_key_create


def key_client(tenant, scopes=("read", "write", "admin")) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key_create(tenant=tenant, name="test", scopes=list(scopes)).secret)
    return client


@pytest.fixture
def api_client(tenant):
    return key_client(tenant)


@pytest.fixture
def other_api_client(other_tenant):
    return key_client(other_tenant)


@pytest.fixture
def make_client():
    return key_client
