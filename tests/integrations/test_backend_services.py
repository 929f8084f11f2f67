"""Backend services: the API, validation with paths, and the YAML import command."""

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from integrations.config import service_from_row
from integrations.models import BackendService
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db
EXAMPLE = Path(__file__).resolve().parents[2] / "integrations" / "examples" / "integration.yaml"
SERVICE = {
    "name": "ticketing",
    "url": "https://ticketing.example.com/api/v1",
    "headers": {"Authorization": "Bearer ${TICKETING_TOKEN}"},
    "timeout_seconds": 10,
    "retry": {"max_attempts": 3, "initial_backoff": "100ms", "max_backoff": "5s", "backoff_multiplier": 2.0},
    "rate_limit": {"requests_per_second": 50, "burst": 10},
    "circuit_breaker": {"threshold": 5, "timeout": "30s", "half_open_requests": 3},
}


def test_create_read_update_delete(api_client, tenant):
    created = api_client.post("/v1/backend-services", SERVICE, format="json")
    assert created.status_code == 201, created.json()
    service_id = created.json()["id"]
    config = service_from_row(BackendService.objects.dangerously_unscoped().get(pk=service_id))
    assert (config.timeout, config.retry.initial_backoff, config.rate_limit.requests_per_second) == (10.0, 0.1, 50)
    assert config.secret_names() == {"TICKETING_TOKEN"}
    patched = api_client.patch(f"/v1/backend-services/{service_id}", {"enabled": False}, format="json")
    assert patched.json()["enabled"] is False
    assert api_client.get(f"/v1/backend-services/{service_id}").json()["url"] == SERVICE["url"]
    assert api_client.delete(f"/v1/backend-services/{service_id}").status_code == 204
    assert not BackendService.objects.dangerously_unscoped().exists()
    actions = AuditLog.objects.for_tenant(tenant).filter(object_id=service_id).order_by("created_at")
    assert list(actions.values_list("action", flat=True)) == [
        "backend_service.create",
        "backend_service.update",
        "backend_service.delete",
    ]


def test_invalid_settings_are_refused_with_their_paths(api_client):
    body = {**SERVICE, "retry": {"max_backoff": "soon", "retryable_http_codes": [404]}, "auth": {"type": "oauth2"}}
    response = api_client.post("/v1/backend-services", body, format="json")
    error = response.json()["error"]
    assert response.status_code == 400
    assert error["code"] == "invalid_backend_service"
    assert error["fields"] == {
        "ticketing.retry.max_backoff": ["'soon' is not a duration like 100ms, 5s or 1m"],
        "ticketing.retry.retryable_http_codes": ["[404] may not be retried (only 429 and 5xx)"],
        "ticketing.auth.token_url": ["is required for oauth2"],
        "ticketing.auth.client_id": ["is required for oauth2"],
        "ticketing.auth.client_secret": ["is required for oauth2"],
    }
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_names_are_unique_per_tenant_and_cannot_change(api_client, other_api_client):
    first = api_client.post("/v1/backend-services", SERVICE, format="json").json()
    again = api_client.post("/v1/backend-services", SERVICE, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "backend_service_exists")
    assert other_api_client.post("/v1/backend-services", SERVICE, format="json").status_code == 201
    renamed = api_client.patch(f"/v1/backend-services/{first['id']}", {"name": "other"}, format="json")
    assert (renamed.status_code, renamed.json()["error"]["code"]) == (400, "rename_not_allowed")


def test_only_admins_change_backend_services(make_client, tenant):
    writer = make_client(tenant, ["write"])
    assert writer.get("/v1/backend-services").status_code == 200
    assert writer.post("/v1/backend-services", SERVICE, format="json").status_code == 403
    assert not BackendService.objects.dangerously_unscoped().exists()


def run_import(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_backend_services", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_the_seeds_example(tenant):
    factories.ProviderCredentialFactory(
        tenant=tenant, name="TICKETING_TOKEN", provider="http", secret={"value": "t" * 20}
    )
    out, _ = run_import(str(EXAMPLE), "--tenant", tenant.slug)
    assert "Imported: 3 new, 0 updated." in out
    assert "issue_classifier refers to secrets not in the vault yet: CLASSIFIER_TOKEN" in out
    configs = {s.name: service_from_row(s) for s in BackendService.objects.for_tenant(tenant)}
    assert configs["ticketing"].timeout == 10.0
    assert configs["webhook_notify"].retry.max_attempts == 2
    assert configs["webhook_notify"].retry.initial_backoff == 0.2
    assert configs["issue_classifier"].retry.max_attempts == 3  # integration.max_retries
    out, _ = run_import(str(EXAMPLE), "--tenant", tenant.slug)
    assert "Imported: 0 new, 3 updated." in out
    assert BackendService.objects.dangerously_unscoped().count() == 3


def test_import_reports_every_error_with_its_path_and_imports_nothing(tenant, tmp_path):
    document = yaml.safe_load(EXAMPLE.read_text())
    document["integration"]["services"]["ticketing"]["timeout"] = "ten seconds"
    document["integration"]["services"]["webhook_notify"]["method"] = "FETCH"
    document["integration"]["services"]["Bad Name"] = {"url": "https://x.example.com"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    err = StringIO()
    with pytest.raises(CommandError, match="3 error"):
        call_command("import_backend_services", str(bad), "--tenant", tenant.slug, stdout=StringIO(), stderr=err)
    assert sorted(err.getvalue().splitlines()) == sorted(
        [
            f"{bad}: integration.services.ticketing.timeout: 'ten seconds' is not a duration like 100ms, 5s or 1m",
            f"{bad}: integration.services.webhook_notify.method: must be one of GET, POST, PUT, PATCH, DELETE",
            f"{bad}: integration.services.Bad Name: service names use lowercase letters, digits, '_' and '-'",
        ]
    )
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_import_dry_run_changes_nothing(tenant):
    out, _ = run_import(str(EXAMPLE), "--tenant", tenant.slug, "--dry-run")
    assert "Would import: 3 new, 0 updated." in out
    assert not BackendService.objects.dangerously_unscoped().exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [("integration: [", "is not valid YAML"), (None, "Cannot read")],
)
def test_import_refuses_unreadable_files(tenant, tmp_path, content, message):
    path = tmp_path / "in.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run_import(str(path), "--tenant", tenant.slug)


def test_import_needs_a_known_tenant():
    with pytest.raises(CommandError, match="No tenant with slug 'nobody'"):
        run_import(str(EXAMPLE), "--tenant", "nobody")
