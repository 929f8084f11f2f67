"""Item 13: the audit log's filters and request column, the webhook deliveries' label, the favicon."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

AUDIT_URL = "/admin/tenants/auditlog/"


def listed_actions(response) -> list[str]:
    return re.findall(r'<td class="field-action">([^<]+)</td>', response.content.decode())


@pytest.fixture
def audit_rows(tenant, other_tenant, owner):
    key = factories.ApiKeyFactory(tenant=tenant)
    rows = {
        "user": factories.AuditLogFactory(
            tenant=tenant, action="agent.update", actor_user=owner, request_id="3f2a9c7e5b1d4e8f9a0b1c2d3e4f5a6b"
        ),
        "key": factories.AuditLogFactory(tenant=tenant, action="call.start", actor_api_key=key, request_id="short-id"),
        "system": factories.AuditLogFactory(tenant=tenant, action="tenant.suspend"),
        "theirs": factories.AuditLogFactory(tenant=other_tenant, action="agent.create", actor_user=owner),
    }
    AuditLog.objects.dangerously_unscoped().filter(pk=rows["system"].pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    return rows


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("resource=agent", {"agent.update", "agent.create"}),
        ("resource=call", {"call.start"}),
        ("actor=user", {"agent.update", "agent.create"}),
        ("actor=api_key", {"call.start"}),
        ("actor=system", {"tenant.suspend"}),
        ("created_at__gte={today}", {"agent.update", "call.start", "agent.create"}),
        ("request_id=short-id", {"call.start"}),
    ],
)
def test_the_audit_log_filters_by_action_actor_date_and_request(staff_client, audit_rows, query, expected):
    today = quote(timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat())

    response = staff_client.get(f"{AUDIT_URL}?{query.format(today=today)}")

    assert response.status_code == 200
    assert set(listed_actions(response)) == expected


def test_the_audit_log_filters_by_tenant(staff_client, audit_rows, tenant):
    response = staff_client.get(f"{AUDIT_URL}?tenant__id__exact={tenant.pk}")

    assert set(listed_actions(response)) == {"agent.update", "call.start", "tenant.suspend"}


def test_the_audit_log_offers_its_filters_and_a_readable_request_column(staff_client, audit_rows):
    html = staff_client.get(AUDIT_URL).content.decode()

    for title in ("By action", "By actor type", "By tenant", "By created at"):
        assert title in html, title
    assert (
        '<a href="?request_id=3f2a9c7e5b1d4e8f9a0b1c2d3e4f5a6b" title="3f2a9c7e5b1d4e8f9a0b1c2d3e4f5a6b">'
        "<code>3f2a9c7e…</code></a>" in html
    )
    assert "<code>short-id</code>" in html


def test_webhook_deliveries_are_spelled_right_in_the_admin(staff_client):
    html = staff_client.get("/admin/").content.decode()

    assert "Webhook deliveries" in html
    assert "deliverys" not in html


def test_the_favicon_is_not_a_404(client, db):
    response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/voiceapp/favicon.svg"
    assert client.get(response["Location"]).status_code == 200


def test_every_page_names_its_icon(client, owner):
    client.force_login(owner)

    html = client.get("/").content.decode()

    assert '<link rel="icon" href="/static/voiceapp/favicon.svg" type="image/svg+xml">' in html
