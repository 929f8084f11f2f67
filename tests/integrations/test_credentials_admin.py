"""The integrations admin: write-only credentials, verification, config-validated services, the request log."""

import base64
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import vault
from integrations.models import BackendService, OutboundRequest, ProviderCredential
from tenants.models import AuditLog
from tests import factories
from tests.integrations.fakes import CREDENTIALS, providers_fixture  # noqa: F401 (the `providers` fixture)

pytestmark = pytest.mark.django_db

PLAINTEXT = "fake-ant-api03-admin-0123456789abcdefWXYZ"
SECRET_FIELDS = ("api_key", "api_secret", "url", "client_id", "client_secret", "value", "check_url", "header")


def url(model, view: str, *args) -> str:
    return reverse(f"admin:integrations_{model._meta.model_name}_{view}", args=args)


def credential_form(tenant, **values) -> dict:
    return {
        "tenant": tenant.pk,
        "name": "LLM_KEY",
        "provider": "anthropic",
        **dict.fromkeys(SECRET_FIELDS, ""),
        **values,
    }


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _leaks(html: str, credential: ProviderCredential, plaintext: str) -> list[str]:
    ciphertext = bytes(credential.ciphertext)
    forms = [plaintext, base64.b64encode(ciphertext).decode(), ciphertext.hex(), plaintext[:-4]]
    return [form for form in forms if form in html]


# --- credentials --------------------------------------------------------------------------------


def test_no_admin_page_shows_a_secret_or_its_ciphertext(staff_client, tenant):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", secret={"api_key": PLAINTEXT})
    pages = {
        "changelist": url(ProviderCredential, "changelist"),
        "change": url(ProviderCredential, "change", credential.pk),
        "history": url(ProviderCredential, "history", credential.pk),
        "delete": url(ProviderCredential, "delete", credential.pk),
    }
    for page, address in pages.items():
        response = staff_client.get(address)
        html = response.content.decode()
        assert response.status_code == 200, page
        assert _leaks(html, credential, PLAINTEXT) == [], page
        if page in ("changelist", "change"):
            assert "••••WXYZ" in html, page
    change = staff_client.get(pages["change"]).content.decode()
    assert 'type="password" name="api_key"' in change and 'value="' + PLAINTEXT not in change


def test_adding_verifies_with_the_provider_then_stores_through_the_service(staff_client, tenant, providers):
    response = staff_client.post(
        url(ProviderCredential, "add"),
        credential_form(tenant, api_key=CREDENTIALS["anthropic"]["api_key"]),
        follow=True,
    )
    assert response.status_code == 200
    credential = ProviderCredential.objects.dangerously_unscoped().get()
    assert (credential.verification, credential.masked, credential.created_by.username) == (
        "verified",
        "••••WXYZ",
        "staff",
    )
    assert vault.decrypt(credential) == CREDENTIALS["anthropic"]
    assert AuditLog.objects.dangerously_unscoped().get(action="credential.create").actor_label == "staff"
    assert len(providers.requests) == 1  # verified once, while validating the form
    assert CREDENTIALS["anthropic"]["api_key"] not in response.content.decode()


def test_a_refused_secret_is_a_form_error_and_is_not_echoed(staff_client, tenant, providers):
    wrong = "fake-ant-api03-wrong-0123456789abcdefWRNG"
    response = staff_client.post(url(ProviderCredential, "add"), credential_form(tenant, api_key=wrong))
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Anthropic did not accept the credential: 401 Unauthorized: authentication_error: invalid x-api-key"
    ]
    assert wrong not in html
    assert not ProviderCredential.objects.dangerously_unscoped().exists()


def test_secret_shape_errors_land_on_the_fields(staff_client, tenant, providers):
    form = credential_form(tenant, provider="livekit", url="ftp://nowhere", api_key="k" * 16, client_id="stray")
    response = staff_client.post(url(ProviderCredential, "add"), form)
    errors = response.context["adminform"].form.errors
    assert errors == {
        "api_secret": ["This field is required."],
        "url": ["Must be a http/https/ws/wss URL."],
        "client_id": ["Unknown field for livekit; expected url, api_key, api_secret."],
    }
    assert providers.requests == []


def test_changing_keeps_the_secret_unless_all_of_it_is_given_again(staff_client, tenant, providers):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", secret={"api_key": PLAINTEXT})
    change = url(ProviderCredential, "change", credential.pk)
    staff_client.post(change, credential_form(tenant, name="RENAMED"), follow=True)
    renamed = ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk)
    assert (renamed.name, bytes(renamed.ciphertext)) == ("RENAMED", bytes(credential.ciphertext))
    assert providers.requests == []

    staff_client.post(change, credential_form(tenant, name="RENAMED", api_key=CREDENTIALS["anthropic"]["api_key"]))
    rotated = ProviderCredential.objects.dangerously_unscoped().get(pk=credential.pk)
    assert vault.decrypt(rotated) == CREDENTIALS["anthropic"]
    assert (
        AuditLog.objects.dangerously_unscoped().filter(action="credential.update", object_id=str(credential.pk)).count()
        == 1
    )


def test_the_verify_action_rechecks_and_reports_each_credential(staff_client, tenant, settings, providers):
    settings.INTEGRATION_CRYPTO_KEY = vault.generate_key_value("k0")
    lost = factories.ProviderCredentialFactory(tenant=tenant, name="LOST")
    settings.INTEGRATION_CRYPTO_KEY = vault.generate_key_value("k1")
    good = factories.ProviderCredentialFactory(tenant=tenant, name="GOOD", secret=CREDENTIALS["anthropic"])
    bad = factories.ProviderCredentialFactory(tenant=tenant, name="BAD", secret={"api_key": PLAINTEXT})
    action = {"action": "verify_credentials", "_selected_action": [lost.pk, good.pk, bad.pk]}
    response = staff_client.post(url(ProviderCredential, "changelist"), action, follow=True)
    assert sorted(messages_of(response)) == sorted(
        [
            f"Credential 'LOST' ({lost.pk}) is encrypted with key 'k0', which INTEGRATION_CRYPTO_KEY no longer "
            "lists: add that key back, or enter the secret again.",
            "BAD: 401 Unauthorized: authentication_error: invalid x-api-key",
            "Verification: 1 failed, 1 unreadable, 1 verified.",
        ]
    )
    assert ProviderCredential.objects.dangerously_unscoped().get(pk=bad.pk).verification == "failed"
    assert PLAINTEXT not in response.content.decode()


def test_deleting_goes_through_the_audited_service(staff_client, tenant):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    staff_client.post(url(ProviderCredential, "delete", credential.pk), {"post": "yes"}, follow=True)
    assert not ProviderCredential.objects.dangerously_unscoped().exists()
    assert AuditLog.objects.dangerously_unscoped().get(action="credential.delete").actor_label == "staff"


# --- backend services ---------------------------------------------------------------------------


def service_form(tenant, **values) -> dict:
    json_fields = dict.fromkeys(("headers", "auth", "tls", "retry", "rate_limit", "circuit_breaker", "logging"), "{}")
    form = {"tenant": tenant.pk, "name": "ticketing", "url": "https://backend.example.com/tools", "method": "POST"}
    return {**form, "enabled": "on", "timeout_seconds": "5", **json_fields, **values}


def test_backend_service_settings_are_validated_by_the_gateways_parser(staff_client, tenant):
    form = service_form(
        tenant,
        retry='{"initial_backoff": "1s", "max_backoff": "10ms", "retryable_http_codes": [404]}',
        auth='{"type": "oauth2", "client_id": "${GOTO.client_id}"}',
        logging='{"include_payload": "yes"}',
    )
    response = staff_client.post(url(BackendService, "add"), form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "retry": [
            "retry.retryable_http_codes: [404] may not be retried (only 429 and 5xx)",
            "retry.max_backoff: must not be shorter than initial_backoff",
        ],
        "auth": ["auth.token_url: is required for oauth2", "auth.client_secret: is required for oauth2"],
        "logging": ["logging.include_payload: must be true or false"],
    }
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_a_valid_backend_service_is_saved(staff_client, tenant):
    headers = '{"Authorization": "Bearer ${TICKETING_TOKEN}"}'
    response = staff_client.post(url(BackendService, "add"), service_form(tenant, headers=headers), follow=True)
    assert response.status_code == 200
    service = BackendService.objects.dangerously_unscoped().get()
    assert (service.name, service.headers) == ("ticketing", {"Authorization": "Bearer ${TICKETING_TOKEN}"})


# --- outbound requests --------------------------------------------------------------------------


def test_the_request_log_is_read_only_and_filters_by_service_and_outcome(staff_client, tenant):
    BackendService.objects.create(tenant=tenant, name="ticketing", url="https://backend.example.com/tools")
    request = OutboundRequest.objects.create(
        tenant=tenant,
        service="ticketing",
        method="POST",
        url="https://backend.example.com/tools",
        outcome=OutboundRequest.Outcome.HTTP_ERROR,
        status_code=502,
        duration_ms=812,
        retry_count=2,
        request_headers={"Authorization": "[redacted]"},
    )
    changelist = url(OutboundRequest, "changelist")
    filtered = staff_client.get(changelist, {"service": "ticketing", "outcome": "http_error"}).content.decode()
    assert url(OutboundRequest, "change", request.pk) in filtered
    assert (
        url(OutboundRequest, "change", request.pk)
        not in staff_client.get(changelist, {"outcome": "ok"}).content.decode()
    )
    year = (timezone.now() - timedelta(days=1)).year
    assert staff_client.get(changelist, {"created_at__year": year}).status_code == 200
    page = staff_client.get(url(OutboundRequest, "change", request.pk))
    assert page.status_code == 200 and "[redacted]" in page.content.decode()
    assert staff_client.get(url(OutboundRequest, "add")).status_code == 403
    assert staff_client.post(url(OutboundRequest, "delete", request.pk), {"post": "yes"}).status_code == 403
