import pytest
from rest_framework.test import APIClient

from tenants.services import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
REQS = [
    ("get", "/v1/calls?started_after=2026-01-01T00:00:00%2B17:00", None),
    ("get", "/v1/calls?number=%2B1555%00", None),
    ("get", "/v1/agents?search=a%00b", None),
    ("get", "/v1/agents?search=", None),
    ("get", "/v1/agents?search=%20", None),
    ("post", "/v1/agents", {"name": "A\u0000B", "system_prompt": "x"}),
    ("post", "/v1/voices", {"name": "V\u0000", "provider_voice_id": "x"}),
    ("post", "/v1/api-keys", {"name": "k", "scopes": ["read", "nope"]}),
    ("delete", "/v1/agents/not-a-uuid", None),
    ("post", "/v1/agents/not-a-uuid", {}),
    ("get", "/v1/usage?start=0001-01-01&end=0001-01-02", None),
]


def test_x():
    t = factories.TenantFactory()
    factories.CallFactory(tenant=t)
    c = APIClient(enforce_csrf_checks=True)
    c.credentials(HTTP_X_API_KEY=api_key_create(tenant=t, name="x", scopes=["read", "write", "admin"]).secret)
    for m, url, body in REQS:
        r = getattr(c, m)(url, body, format="json") if body is not None else getattr(c, m)(url)
        print("RESULT", m.upper(), url, body, r.status_code, r.get("Content-Type"), r.content[:160])
