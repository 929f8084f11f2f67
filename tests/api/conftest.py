"""API test helpers (the fixtures built on them are in tests/conftest.py, for every test folder)."""

from rest_framework.test import APIClient

from tenants.services import api_key_create


def key_client(tenant, scopes=("read", "write", "admin")) -> APIClient:
    """An API client authenticated by a new key of `tenant` with `scopes`."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key_create(tenant=tenant, name="test", scopes=list(scopes)).secret)
    return client
