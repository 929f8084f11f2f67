"""The Developers pages: API keys, webhook endpoints and deliveries, provider credentials, backend services."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from integrations import netguard, vault
from integrations.models import BackendService, OutboundRequest, ProviderCredential, WebhookDelivery, WebhookEndpoint
from integrations.webhooks.services import endpoint_secrets
from tenants.models import ApiKey, AuditLog, Membership
from tenants.services import api_key_hash
from tests import factories
from tests.integrations.fakes import CREDENTIALS, providers_fixture  # noqa: F401 (the `providers` fixture)

pytestmark = pytest.mark.django_db


def html_of(response) -> str:
    return response.content.decode()


def audit_actions(tenant) -> list[str]:
    return list(AuditLog.objects.for_tenant(tenant).order_by("created_at").values_list("action", flat=True))


@pytest.fixture
def admin_client(tenant):
    """An admin (not the owner) of `tenant`: admins manage keys, webhooks and credentials too."""
    user = factories.UserFactory(username="adele")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def strict_network(settings):
    """Production's netguard: private and loopback addresses are refused."""
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    netguard.forget()
    yield
    netguard.forget()


# --- overview -------------------------------------------------------------------------------------


def test_overview_counts_for_an_owner(web_client, tenant, other_tenant):
    factories.ApiKeyFactory(tenant=tenant)
    factories.ApiKeyFactory(tenant=tenant, revoked_at=timezone.now())
    factories.ApiKeyFactory(tenant=other_tenant)
    factories.WebhookEndpointFactory(tenant=tenant, failing_since=timezone.now())
    factories.ProviderCredentialFactory(tenant=tenant, verification=ProviderCredential.Verification.FAILED)
    BackendService.objects.create(tenant=other_tenant, name="crm", url="https://crm.example.com")

    response = web_client.get("/developers/")

    assert response.status_code == 200
    assert response.context["page_title"] == "Developers"
    counts = {k: response.context[k] for k in ("api_key_count", "webhook_count", "webhooks_failing", "backend_count")}
    assert counts == {"api_key_count": 1, "webhook_count": 1, "webhooks_failing": 1, "backend_count": 0}
    assert (response.context["credential_count"], response.context["credentials_failed"]) == (1, 1)
    html = html_of(response)
    for url in ("/developers/api-keys/", "/developers/webhooks/", "/developers/credentials/", "/developers/backends/"):
        assert f'href="{url}"' in html


def test_overview_for_a_viewer_hides_what_only_admins_may_see(viewer_client, tenant):
    factories.ApiKeyFactory(tenant=tenant)

    response = viewer_client.get("/developers/")

    html = html_of(response)
    assert response.status_code == 200
    assert "api_key_count" not in response.context
    assert 'href="/developers/api-keys/"' not in html and 'href="/developers/credentials/"' not in html
    assert "Only owners and admins can see and manage API keys." in html
    assert 'href="/developers/webhooks/"' in html


# --- API keys -------------------------------------------------------------------------------------


def test_api_key_list_shows_the_tenants_keys(web_client, tenant, other_tenant):
    factories.ApiKeyFactory(tenant=tenant, name="CRM sync", prefix="vk_live_aaaa1111", scopes=["read"])
    factories.ApiKeyFactory(tenant=tenant, name="Old key", prefix="vk_live_bbbb2222", revoked_at=timezone.now())
    factories.ApiKeyFactory(tenant=other_tenant, name="Globex key", prefix="vk_live_cccc3333")

    response = web_client.get("/developers/api-keys/")

    html = html_of(response)
    assert response.status_code == 200
    assert response.context["page_title"] == "API keys"
    assert sorted(k.name for k in response.context["api_keys"]) == ["CRM sync", "Old key"]
    assert 'data-testid="api-keys-table"' in html
    assert "vk_live_aaaa1111" in html and "Revoked" in html
    assert "Globex key" not in html and "vk_live_cccc3333" not in html
    assert html.count('data-testid="api-key-revoke"') == 1  # the revoked one has no button


def test_api_key_list_empty_state(web_client):
    html = html_of(web_client.get("/developers/api-keys/"))

    assert "No API keys yet" in html
    assert 'data-testid="api-keys-table"' not in html


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_api_keys_are_for_admins_only(request, who, tenant):
    client = request.getfixturevalue(who)

    assert client.get("/developers/api-keys/").status_code == 403
    assert client.get("/developers/api-keys/new/").status_code == 403
    response = client.post("/developers/api-keys/new/", {"name": "Sneaky", "scopes": ["admin"]})
    assert response.status_code == 403
    assert not ApiKey.objects.dangerously_unscoped().exists()


def test_creating_a_key_shows_its_secret_once(admin_client, tenant):
    posted = admin_client.post(
        "/developers/api-keys/new/", {"name": "CRM sync", "scopes": ["read", "write"], "expires_at": ""}
    )
    key = ApiKey.objects.for_tenant(tenant).get()
    assert posted.status_code == 302 and posted["Location"] == f"/developers/api-keys/{key.pk}/created/"
    assert not posted.content  # the POST's response carries no secret

    response = admin_client.get(posted["Location"])

    assert response.status_code == 200
    secret = response.context["secret"]
    assert (key.name, key.scopes, key.expires_at, key.created_by.username) == (
        "CRM sync",
        ["read", "write"],
        None,
        "adele",
    )
    assert key.key_hash == api_key_hash(secret)
    assert secret.startswith(key.prefix)
    html = html_of(response)
    assert html.count(secret) == 1
    assert 'data-testid="api-key-secret"' in html and "It will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert audit_actions(tenant) == ["api_key.create"]
    # Never again: not on the list, not in the session, not in a message waiting for the next page.
    listed = admin_client.get("/developers/api-keys/")
    assert secret not in html_of(listed) and key.prefix in html_of(listed)
    assert secret not in str(dict(admin_client.session.items()))
    assert secret not in html_of(admin_client.get("/developers/"))


def test_a_key_with_an_expiry(web_client, tenant):
    expires = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)

    response = web_client.post(
        "/developers/api-keys/new/",
        {"name": "Temp", "scopes": ["read"], "expires_at": expires.strftime("%Y-%m-%dT%H:%M")},
    )

    assert response.status_code == 302
    assert ApiKey.objects.for_tenant(tenant).get().expires_at == expires


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"name": "", "scopes": ["read"]}, {"name": ["This field is required."]}),
        ({"name": "No scopes"}, {"scopes": ["This field is required."]}),
        (
            {"name": "Bad scope", "scopes": ["root"]},
            {"scopes": ["Select a valid choice. root is not one of the available choices."]},
        ),
        (
            {"name": "Past", "scopes": ["read"], "expires_at": "2020-01-01T00:00"},
            {"expires_at": ["Choose a time in the future."]},
        ),
    ],
)
def test_invalid_key_input_is_shown_inline_and_creates_nothing(web_client, data, errors):
    response = web_client.post("/developers/api-keys/new/", data)

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert 'data-testid="api-key-form"' in html_of(response)
    assert 'data-testid="api-key-secret"' not in html_of(response)
    assert not ApiKey.objects.dangerously_unscoped().exists()


def test_revoking_a_key(web_client, tenant):
    key = factories.ApiKeyFactory(tenant=tenant, name="CRM sync")

    response = web_client.post(f"/developers/api-keys/{key.pk}/revoke/")

    assert (response.status_code, response["Location"]) == (302, "/developers/api-keys/")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert audit_actions(tenant) == ["api_key.revoke"]
    assert "is revoked" in html_of(web_client.get("/developers/api-keys/"))


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_viewers_and_members_cannot_revoke(request, who, tenant):
    key = factories.ApiKeyFactory(tenant=tenant)

    response = request.getfixturevalue(who).post(f"/developers/api-keys/{key.pk}/revoke/")

    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_tenants_key_cannot_be_revoked(other_web_client, tenant):
    key = factories.ApiKeyFactory(tenant=tenant)

    response = other_web_client.post(f"/developers/api-keys/{key.pk}/revoke/")

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


# --- webhooks -------------------------------------------------------------------------------------


def test_webhook_list(viewer_client, tenant, other_tenant):
    factories.WebhookEndpointFactory(tenant=tenant, url="https://hooks.acme.test/calls", event_types=["call.ended"])
    factories.WebhookEndpointFactory(
        tenant=tenant, url="https://hooks.acme.test/old", enabled=False, disabled_reason="gone"
    )
    factories.WebhookEndpointFactory(tenant=other_tenant, url="https://globex.test/hook")

    response = viewer_client.get("/developers/webhooks/")

    html = html_of(response)
    assert response.status_code == 200
    assert [e.url for e in response.context["endpoints"]] == [
        "https://hooks.acme.test/calls",
        "https://hooks.acme.test/old",
    ]
    assert 'data-testid="webhooks-table"' in html
    assert "call.ended" in html and "Disabled" in html and "The endpoint answered 410 Gone" in html
    assert "globex.test" not in html
    assert 'data-testid="webhook-new"' not in html  # a viewer gets no write buttons


def test_webhook_list_empty_state(web_client):
    html = html_of(web_client.get("/developers/webhooks/"))

    assert "No webhook endpoints yet" in html
    assert 'href="/developers/webhooks/new/"' in html


def test_creating_an_endpoint_shows_its_signing_secret_once(web_client, tenant):
    data = {
        "url": "https://hooks.acme.test/voice",
        "description": "CRM",
        "event_types": ["call.ended", "call.analyzed"],
    }

    posted = web_client.post("/developers/webhooks/new/", {**data, "enabled": "on"})
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).get()
    assert posted.status_code == 302 and posted["Location"] == f"/developers/webhooks/{endpoint.pk}/secret/"

    response = web_client.get(posted["Location"])

    assert response.status_code == 200
    assert (endpoint.url, endpoint.description, endpoint.event_types, endpoint.enabled) == (
        "https://hooks.acme.test/voice",
        "CRM",
        ["call.analyzed", "call.ended"],
        True,
    )
    secret = response.context["secret"]
    assert endpoint_secrets(endpoint) == [secret]
    assert html_of(response).count(secret) == 1
    assert "no-store" in response["Cache-Control"]
    assert secret not in html_of(web_client.get(f"/developers/webhooks/{endpoint.pk}/"))
    assert secret not in str(dict(web_client.session.items()))


def test_webhook_form_renders(web_client):
    response = web_client.get("/developers/webhooks/new/")

    html = html_of(response)
    assert response.status_code == 200
    assert 'data-testid="webhook-form"' in html
    assert 'value="call.ended"' in html and 'value="*"' in html


@pytest.mark.parametrize(
    ("url", "https_only", "error"),
    [
        ("ftp://hooks.acme.test/x", False, "Must be an http(s) URL."),  # Django accepts ftp; the service does not
        ("http://hooks.acme.test/x", True, "Must be an https URL."),
        ("not a url", False, "Enter a valid URL."),
    ],
)
def test_url_refusals_are_inline(web_client, settings, url, https_only, error):
    settings.WEBHOOK_REQUIRE_HTTPS = https_only

    response = web_client.post("/developers/webhooks/new/", {"url": url, "event_types": ["*"], "enabled": "on"})

    assert response.status_code == 400
    assert response.context["form"].errors == {"url": [error]}
    assert error in html_of(response)
    assert not WebhookEndpoint.objects.dangerously_unscoped().exists()


def test_a_private_address_is_refused_inline(web_client, strict_network):
    response = web_client.post(
        "/developers/webhooks/new/", {"url": "http://127.0.0.1:8000/hook", "event_types": ["*"], "enabled": "on"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "url": [
            "The platform will not call this address: 127.0.0.1 is a private, loopback or link-local address, "
            "which the platform does not call."
        ]
    }
    assert not WebhookEndpoint.objects.dangerously_unscoped().exists()


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_only_admins_create_endpoints(request, who):
    client = request.getfixturevalue(who)

    assert client.get("/developers/webhooks/new/").status_code == 403
    response = client.post("/developers/webhooks/new/", {"url": "https://hooks.acme.test/", "event_types": ["*"]})
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.dangerously_unscoped().exists()


def test_editing_an_endpoint_changes_only_what_was_changed(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, url="https://hooks.acme.test/a", event_types=["*"])
    pending = factories.WebhookDeliveryFactory(endpoint=endpoint, status=WebhookDelivery.Status.PENDING)

    form = web_client.get(f"/developers/webhooks/{endpoint.pk}/edit/")
    assert form.status_code == 200
    response = web_client.post(
        f"/developers/webhooks/{endpoint.pk}/edit/",
        {"url": "https://hooks.acme.test/a", "event_types": ["*"], "description": "paused"},
    )

    assert (response.status_code, response["Location"]) == (302, f"/developers/webhooks/{endpoint.pk}/")
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.enabled, endpoint.disabled_reason) == ("paused", False, "manual")
    pending.refresh_from_db()
    assert pending.status == WebhookDelivery.Status.FAILED
    update = AuditLog.objects.for_tenant(tenant).get(action="webhook_endpoint.update")
    assert update.changes["fields"] == ["description", "enabled"]


def test_another_tenants_endpoint_is_a_404_everywhere(other_web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    base = f"/developers/webhooks/{endpoint.pk}"

    assert other_web_client.get(f"{base}/").status_code == 404
    assert other_web_client.get(f"{base}/edit/").status_code == 404
    assert other_web_client.post(f"{base}/edit/", {"url": "https://x.test/", "event_types": ["*"]}).status_code == 404
    assert other_web_client.post(f"{base}/rotate-secret/", {"overlap_hours": 0}).status_code == 404
    assert other_web_client.post(f"{base}/replay/", {"since": "2020-01-01T00:00"}).status_code == 404
    assert other_web_client.post(f"{base}/delete/").status_code == 404
    endpoint.refresh_from_db()
    assert (endpoint.url.startswith("https://hooks.example.com/"), endpoint.secret_rotated_at) == (True, None)
    assert not AuditLog.objects.dangerously_unscoped().exists()


def test_deleting_an_endpoint(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/delete/")

    assert (response.status_code, response["Location"]) == (302, "/developers/webhooks/")
    assert not WebhookEndpoint.objects.dangerously_unscoped().exists()
    assert audit_actions(tenant) == ["webhook_endpoint.delete"]


def test_viewer_cannot_delete_an_endpoint(viewer_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    assert viewer_client.post(f"/developers/webhooks/{endpoint.pk}/delete/").status_code == 403
    assert WebhookEndpoint.objects.dangerously_unscoped().filter(pk=endpoint.pk).exists()


def test_endpoint_page_shows_its_delivery_log(viewer_client, tenant, other_tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    failed = factories.WebhookDeliveryFactory(endpoint=endpoint, event_type="call.ended", last_status_code=503)
    factories.WebhookAttemptFactory(delivery=failed, number=1, status_code=503)
    retry_at = timezone.now() + timedelta(minutes=5)
    factories.WebhookDeliveryFactory(
        endpoint=endpoint, event_type="call.analyzed", status=WebhookDelivery.Status.PENDING, next_attempt_at=retry_at
    )
    other = factories.WebhookDeliveryFactory(endpoint=factories.WebhookEndpointFactory(tenant=other_tenant))

    response = viewer_client.get(f"/developers/webhooks/{endpoint.pk}/")

    html = html_of(response)
    assert response.status_code == 200
    assert {d.event_type for d in response.context["deliveries"]} == {"call.ended", "call.analyzed"}
    assert 'data-testid="deliveries-table"' in html
    assert "HTTP 503" in html and "HTTP error (503)" in html
    assert other.message_id not in html
    assert 'data-testid="delivery-replay"' not in html and 'data-testid="webhook-replay-form"' not in html

    only_failed = viewer_client.get(f"/developers/webhooks/{endpoint.pk}/?status=failed")
    assert [d.pk for d in only_failed.context["deliveries"]] == [failed.pk]


def test_endpoint_page_without_deliveries(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    html = html_of(web_client.get(f"/developers/webhooks/{endpoint.pk}/"))

    assert "No deliveries yet" in html
    assert 'data-testid="webhook-replay-form"' in html


def test_replaying_one_delivery_queues_it_again(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint, attempts=4, cycle_attempts=4, last_status_code=500)
    before = timezone.now()

    response = web_client.post(f"/developers/webhook-deliveries/{delivery.pk}/replay/")

    assert (response.status_code, response["Location"]) == (302, f"/developers/webhooks/{endpoint.pk}/")
    delivery.refresh_from_db()
    assert (
        WebhookDelivery.objects.dangerously_unscoped().count() == 1
    )  # the same delivery (same webhook-id and body), a new cycle
    assert (delivery.status, delivery.cycle_attempts, delivery.attempts) == ("pending", 0, 4)
    assert delivery.replayed_at >= before and delivery.next_attempt_at >= before
    audit = AuditLog.objects.for_tenant(tenant).get()
    assert (audit.action, audit.object_id, audit.actor_label) == ("webhook_delivery.replay", str(delivery.pk), "alice")


def test_replaying_a_pending_delivery_is_refused_on_its_row(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint, status=WebhookDelivery.Status.PENDING)

    response = web_client.post(f"/developers/webhook-deliveries/{delivery.pk}/replay/")

    assert response.status_code == 400
    assert response.context["refused_message"] == "The delivery is already scheduled."
    assert 'data-testid="delivery-replay-error"' in html_of(response)
    assert not AuditLog.objects.dangerously_unscoped().exists()


def test_another_tenants_delivery_cannot_be_replayed(other_web_client, tenant):
    delivery = factories.WebhookDeliveryFactory(endpoint=factories.WebhookEndpointFactory(tenant=tenant))

    response = other_web_client.post(f"/developers/webhook-deliveries/{delivery.pk}/replay/")

    assert response.status_code == 404
    delivery.refresh_from_db()
    assert (delivery.status, delivery.replayed_at) == ("failed", None)


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_viewers_and_members_cannot_replay(request, who, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint)
    client = request.getfixturevalue(who)

    assert client.post(f"/developers/webhook-deliveries/{delivery.pk}/replay/").status_code == 403
    assert client.post(f"/developers/webhooks/{endpoint.pk}/replay/", {"since": "2020-01-01T00:00"}).status_code == 403
    delivery.refresh_from_db()
    assert (delivery.status, delivery.replayed_at) == ("failed", None)


def test_replaying_every_failed_delivery_since_a_time(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    since = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    old = factories.WebhookDeliveryFactory(endpoint=endpoint)
    WebhookDelivery.objects.dangerously_unscoped().filter(pk=old.pk).update(created_at=since - timedelta(minutes=1))
    recent = factories.WebhookDeliveryFactory(endpoint=endpoint)
    succeeded = factories.WebhookDeliveryFactory(
        endpoint=endpoint, status=WebhookDelivery.Status.SUCCEEDED, delivered_at=timezone.now()
    )

    response = web_client.post(
        f"/developers/webhooks/{endpoint.pk}/replay/", {"since": since.strftime("%Y-%m-%dT%H:%M")}
    )

    assert response.status_code == 302
    statuses = dict(WebhookDelivery.objects.dangerously_unscoped().values_list("pk", "status"))
    assert statuses == {old.pk: "failed", recent.pk: "pending", succeeded.pk: "succeeded"}
    audit = AuditLog.objects.for_tenant(tenant).get()
    assert (audit.action, audit.changes["replayed"]) == ("webhook_endpoint.replay", 1)
    assert "1 failed delivery will be sent again now." in html_of(web_client.get(response["Location"]))


def test_replay_on_a_disabled_endpoint_is_an_inline_error(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, enabled=False, disabled_reason="failing")
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint)

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/replay/", {"since": "2020-01-01T00:00"})

    assert response.status_code == 400
    assert response.context["replay_form"].non_field_errors() == ["The endpoint is disabled: enable it first."]
    assert "The endpoint is disabled: enable it first." in html_of(response)
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_replay_needs_a_time(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/replay/", {"since": ""})

    assert response.status_code == 400
    assert response.context["replay_form"].errors == {"since": ["This field is required."]}


def test_rotating_the_signing_secret_shows_the_new_one_once(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

    posted = web_client.post(f"/developers/webhooks/{endpoint.pk}/rotate-secret/", {"overlap_hours": "2"})
    assert posted.status_code == 302 and posted["Location"] == f"/developers/webhooks/{endpoint.pk}/secret/"

    response = web_client.get(posted["Location"])

    assert response.status_code == 200
    assert response.context["rotated"] is True and "New signing secret" in html_of(response)
    secret = response.context["secret"]
    endpoint.refresh_from_db()
    assert endpoint_secrets(endpoint) == [secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    assert endpoint.previous_secret_expires_at - endpoint.secret_rotated_at == timedelta(hours=2)
    assert html_of(response).count(secret) == 1
    assert "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in html_of(response)


def test_rotation_overlap_out_of_range_is_inline(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/rotate-secret/", {"overlap_hours": "500"})

    assert response.status_code == 400
    assert response.context["rotate_form"].errors == {
        "overlap_hours": ["Ensure this value is less than or equal to 168."]
    }
    endpoint.refresh_from_db()
    assert endpoint.secret_rotated_at is None


def test_reloading_the_new_key_page_shows_no_secret_and_makes_no_second_key(admin_client, tenant):
    posted = admin_client.post("/developers/api-keys/new/", {"name": "CRM sync", "scopes": ["read"]})
    secret = admin_client.get(posted["Location"]).context["secret"]

    reloaded = admin_client.get(posted["Location"])

    assert ApiKey.objects.for_tenant(tenant).count() == 1
    assert reloaded.status_code == 302 and reloaded["Location"] == "/developers/api-keys/"
    listed = html_of(admin_client.get("/developers/api-keys/"))
    assert "was shown once and cannot be shown again" in listed
    assert secret not in listed


def test_reloading_the_signing_secret_page_shows_it_no_more(web_client, tenant):
    posted = web_client.post("/developers/webhooks/new/", {"url": "https://hooks.acme.test/v", "event_types": ["*"]})
    secret = web_client.get(posted["Location"]).context["secret"]

    reloaded = web_client.get(posted["Location"], follow=True)

    assert WebhookEndpoint.objects.for_tenant(tenant).count() == 1
    assert secret not in html_of(reloaded)
    assert "was shown once and cannot be shown again" in html_of(reloaded)


def test_the_held_secret_is_sealed_in_the_session_and_expires(admin_client, tenant):
    from integrations import secret_once

    posted = admin_client.post("/developers/api-keys/new/", {"name": "CRM sync", "scopes": ["read"]})
    held = admin_client.session[secret_once.SESSION_KEY]
    assert set(held) == {"binding", "key_id", "nonce", "ciphertext", "at", "extra"}
    session = admin_client.session
    session[secret_once.SESSION_KEY] = {**held, "at": held["at"] - secret_once.HOLD_SECONDS - 1}
    session.save()

    late = admin_client.get(posted["Location"])

    assert late.status_code == 302  # too late: nothing shown
    assert secret_once.SESSION_KEY not in admin_client.session


def test_another_session_cannot_see_a_held_secret(admin_client, owner, tenant):
    posted = admin_client.post("/developers/api-keys/new/", {"name": "CRM sync", "scopes": ["read"]})
    colleague = Client()
    colleague.force_login(owner)

    assert colleague.get(posted["Location"]).status_code == 302
    mine = admin_client.get(posted["Location"])
    assert mine.status_code == 200 and mine.context["secret"].startswith("vk_")


def test_another_tenants_new_key_page_is_404(admin_client, other_web_client, tenant):
    posted = admin_client.post("/developers/api-keys/new/", {"name": "CRM sync", "scopes": ["read"]})

    assert other_web_client.get(posted["Location"]).status_code == 404


# --- provider credentials -------------------------------------------------------------------------


def test_credential_list_is_masked(web_client, tenant, other_tenant):
    secret = {"api_key": "fake-ant-api03-listed-0123456789abcdefLIST"}
    factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", secret=secret, verification_message="200 OK")
    factories.ProviderCredentialFactory(tenant=other_tenant, name="GLOBEX_KEY")

    response = web_client.get("/developers/credentials/")

    html = html_of(response)
    assert response.status_code == 200
    assert response.context["page_title"] == "Provider credentials"
    assert 'data-testid="credentials-table"' in html
    assert "LLM_KEY" in html and "••••LIST" in html and "Verified" in html
    assert secret["api_key"] not in html and "0123456789abcdef" not in html
    assert "GLOBEX_KEY" not in html


def test_credential_list_empty_state(web_client):
    html = html_of(web_client.get("/developers/credentials/"))

    assert "No credentials yet" in html


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_credentials_are_for_admins_only(request, who, tenant):
    client = request.getfixturevalue(who)
    credential = factories.ProviderCredentialFactory(tenant=tenant)

    assert client.get("/developers/credentials/").status_code == 403
    assert client.get("/developers/credentials/new/?provider=anthropic").status_code == 403
    assert client.post(f"/developers/credentials/{credential.pk}/delete/").status_code == 403
    assert (
        client.post(
            "/developers/credentials/new/?provider=anthropic", {"name": "X", "api_key": "fake-ant-api03-x"}
        ).status_code
        == 403
    )
    assert list(ProviderCredential.objects.dangerously_unscoped().values_list("pk", flat=True)) == [credential.pk]


def test_adding_a_credential_starts_with_the_provider(web_client):
    chooser = web_client.get("/developers/credentials/new/")
    form = web_client.get("/developers/credentials/new/?provider=livekit")

    assert chooser.status_code == 200
    assert 'href="?provider=deepgram"' in html_of(chooser) and 'data-testid="credential-form"' not in html_of(chooser)
    assert list(form.context["form"].fields) == ["name", "url", "api_key", "api_secret"]
    assert 'type="password"' in html_of(form)


def test_a_credential_is_verified_then_stored(web_client, tenant, providers):
    secret = providers.secret("deepgram")

    response = web_client.post("/developers/credentials/new/?provider=deepgram", {"name": "DEEPGRAM_KEY", **secret})

    assert (response.status_code, response["Location"]) == (302, "/developers/credentials/")
    credential = ProviderCredential.objects.for_tenant(tenant).get()
    assert (credential.name, credential.provider, credential.verification) == ("DEEPGRAM_KEY", "deepgram", "verified")
    assert vault.decrypt(credential) == secret
    assert [r.path for r in providers.requests] == ["/v1/projects"]
    listed = html_of(web_client.get("/developers/credentials/"))
    assert "DEEPGRAM_KEY saved: Deepgram accepted it." in listed
    assert secret["api_key"] not in listed and "••••DGKY" in listed


def test_a_credential_the_provider_refuses_is_not_stored(web_client, tenant, providers):
    wrong = "fake-ant-api03-wrong-0123456789abcdefWRNG"

    response = web_client.post("/developers/credentials/new/?provider=anthropic", {"name": "LLM_KEY", "api_key": wrong})

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Anthropic did not accept the credential: 401 Unauthorized: authentication_error: invalid x-api-key"
    ]
    html = html_of(response)
    assert "Anthropic did not accept the credential" in html
    assert wrong not in html
    assert 'value="LLM_KEY"' in html  # the name is kept, the secret is not sent back
    assert not ProviderCredential.objects.dangerously_unscoped().exists()
    assert not AuditLog.objects.dangerously_unscoped().exists()


def test_credential_name_refusals_from_the_service_are_inline(web_client, tenant, providers):
    factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    secret = providers.secret("anthropic")

    taken = web_client.post("/developers/credentials/new/?provider=anthropic", {"name": "LLM_KEY", **secret})
    invalid = web_client.post("/developers/credentials/new/?provider=anthropic", {"name": "9 lives", **secret})

    assert taken.status_code == invalid.status_code == 400
    assert taken.context["form"].errors == {"name": ["A credential with this name already exists."]}
    assert invalid.context["form"].errors == {
        "name": ["Use letters, digits and _ (not starting with a digit), at most 100."]
    }
    assert secret["api_key"] not in html_of(taken)
    assert ProviderCredential.objects.dangerously_unscoped().count() == 1


def test_a_missing_secret_field_is_inline(web_client):
    response = web_client.post("/developers/credentials/new/?provider=gotoconnect", {"name": "GOTO", "client_id": "x"})

    assert response.status_code == 400
    assert response.context["form"].errors == {"client_secret": ["This field is required."]}
    assert not ProviderCredential.objects.dangerously_unscoped().exists()


def test_replacing_a_secret(web_client, tenant, providers):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")
    new = providers.secret("anthropic")

    page = web_client.get(f"/developers/credentials/{credential.pk}/replace/")
    response = web_client.post(f"/developers/credentials/{credential.pk}/replace/", new)

    assert page.status_code == 200 and list(page.context["form"].fields) == ["api_key"]
    assert response.status_code == 302
    credential.refresh_from_db()
    assert vault.decrypt(credential) == new
    assert audit_actions(tenant) == ["credential.update"]


def test_a_refused_replacement_keeps_the_stored_secret(web_client, tenant, providers):
    old = {"api_key": "fake-ant-api03-old-0123456789abcdefOLDK"}
    credential = factories.ProviderCredentialFactory(tenant=tenant, secret=old)

    response = web_client.post(
        f"/developers/credentials/{credential.pk}/replace/", {"api_key": "fake-ant-api03-wrong-0123456789abcdefWRNG"}
    )

    assert response.status_code == 400
    assert "Anthropic did not accept the credential" in html_of(response)
    credential.refresh_from_db()
    assert vault.decrypt(credential) == old


def test_checking_a_credential_again(web_client, tenant, providers):
    credential = factories.ProviderCredentialFactory(
        tenant=tenant, name="LLM_KEY", secret=dict(CREDENTIALS["anthropic"]), verification="unverified"
    )

    response = web_client.post(f"/developers/credentials/{credential.pk}/verify/")

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.verification == "verified"
    assert "Anthropic accepted LLM_KEY." in html_of(web_client.get("/developers/credentials/"))


def test_deleting_a_credential(web_client, tenant):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY")

    response = web_client.post(f"/developers/credentials/{credential.pk}/delete/")

    assert response.status_code == 302
    assert not ProviderCredential.objects.dangerously_unscoped().exists()
    assert audit_actions(tenant) == ["credential.delete"]


def test_another_tenants_credential_is_a_404(other_web_client, tenant):
    credential = factories.ProviderCredentialFactory(tenant=tenant)
    base = f"/developers/credentials/{credential.pk}"

    assert other_web_client.get(f"{base}/replace/").status_code == 404
    assert other_web_client.post(f"{base}/replace/", {"api_key": "fake-ant-api03-x"}).status_code == 404
    assert other_web_client.post(f"{base}/verify/").status_code == 404
    assert other_web_client.post(f"{base}/delete/").status_code == 404
    assert ProviderCredential.objects.dangerously_unscoped().filter(pk=credential.pk).exists()
    assert not AuditLog.objects.dangerously_unscoped().exists()


# --- backend services -----------------------------------------------------------------------------

SERVICE_FORM = {
    "name": "ticketing",
    "url": "https://ticketing.example.com/api/v1",
    "method": "POST",
    "timeout_seconds": "10",
    "enabled": "on",
    "headers": '{"X-Tenant": "acme"}',
    "auth": '{"type": "bearer", "value": "${TICKETING_TOKEN}"}',
    "retry": '{"max_attempts": 3, "initial_backoff": "100ms"}',
    "rate_limit": "",
    "circuit_breaker": '{"threshold": 5, "timeout": "30s"}',
    "tls": "",
    "logging": "",
}


def test_backend_list_with_the_last_call(viewer_client, tenant, other_tenant):
    BackendService.objects.create(tenant=tenant, name="ticketing", url="https://t.example.com", auth={"type": "bearer"})
    BackendService.objects.create(tenant=tenant, name="crm", url="https://crm.example.com", enabled=False)
    BackendService.objects.create(tenant=other_tenant, name="globex-erp", url="https://erp.globex.test")
    for outcome, code in (("ok", 200), ("circuit_open", None)):
        OutboundRequest.objects.create(
            tenant=tenant, service="ticketing", method="POST", url="https://t.example.com", outcome=outcome,
            status_code=code, duration_ms=5,
        )  # fmt: skip
    OutboundRequest.objects.create(
        tenant=other_tenant, service="crm", method="POST", url="https://x.test", outcome="ok", duration_ms=5
    )

    response = viewer_client.get("/developers/backends/")

    html = html_of(response)
    assert response.status_code == 200
    rows = {b.name: (b.last_outcome, b.last_outcome_label) for b in response.context["backends"]}
    assert rows == {"crm": (None, ""), "ticketing": ("circuit_open", "Circuit open")}
    assert 'data-testid="backends-table"' in html
    assert "bearer" in html and "Never called" in html and "Disabled" in html
    assert "globex-erp" not in html
    assert 'data-testid="backend-edit"' not in html and 'data-testid="backend-new"' not in html


def test_backend_list_empty_state(web_client):
    html = html_of(web_client.get("/developers/backends/"))

    assert "No backend services yet" in html
    assert 'href="/developers/backends/new/"' in html


def test_creating_a_backend_service(web_client, tenant):
    assert web_client.get("/developers/backends/new/").status_code == 200

    response = web_client.post("/developers/backends/new/", SERVICE_FORM)

    assert (response.status_code, response["Location"]) == (302, "/developers/backends/")
    service = BackendService.objects.for_tenant(tenant).get()
    assert (service.name, service.url, service.method, service.timeout_seconds, service.enabled) == (
        "ticketing",
        "https://ticketing.example.com/api/v1",
        "POST",
        10.0,
        True,
    )
    assert service.auth == {"type": "bearer", "value": "${TICKETING_TOKEN}"}
    assert (service.headers, service.rate_limit, service.tls) == ({"X-Tenant": "acme"}, {}, {})
    assert audit_actions(tenant) == ["backend_service.create"]


def test_gateway_setting_errors_are_inline_with_their_paths(web_client):
    data = {
        **SERVICE_FORM,
        "retry": '{"max_backoff": "soon", "retryable_http_codes": [404]}',
        "auth": '{"type": "oauth2"}',
    }

    response = web_client.post("/developers/backends/new/", data)

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "retry": [
            "retry.retryable_http_codes: [404] may not be retried (only 429 and 5xx)",
            "retry.max_backoff: 'soon' is not a duration like 100ms, 5s or 1m",
        ],
        "auth": [
            "auth.token_url: is required for oauth2",
            "auth.client_id: is required for oauth2",
            "auth.client_secret: is required for oauth2",
        ],
    }
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_every_backend_error_is_reported_at_once_with_its_path(web_client):
    data = {
        **SERVICE_FORM,
        "headers": "[1, 2]",  # the form's own error
        "retry": '{"max_attempts": "many", "initial_backoff": "2s", "max_backoff": "1s"}',
        "rate_limit": '{"burst": -1, "bogus": 1}',
        "timeout_seconds": "0",  # the form's own error
    }

    response = web_client.post("/developers/backends/new/", data)

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["headers"] == ['Must be a JSON object, like {"key": "value"}, or empty.']
    assert errors["timeout_seconds"] == ["Ensure this value is greater than or equal to 0.001."]
    assert errors["retry"] == [
        "retry.max_attempts: must be an integer",
        "retry.max_backoff: must not be shorter than initial_backoff",
    ]
    assert sorted(errors["rate_limit"]) == [
        "rate_limit.bogus: unknown setting",
        "rate_limit.burst: must be between 1 and 100000",
    ]
    html = html_of(response)
    assert "retry.max_attempts: must be an integer" in html and "rate_limit.bogus: unknown setting" in html
    assert not BackendService.objects.dangerously_unscoped().exists()


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"headers": "[1, 2]"}, {"headers": ['Must be a JSON object, like {"key": "value"}, or empty.']}),
        ({"headers": "{oops"}, {"headers": ["Enter a valid JSON."]}),
        (
            {"headers": '{"a": ' * 20_000 + "1" + "}" * 20_000},
            {"headers": ["This JSON cannot be used: The JSON nests deeper than 64 levels."]},
        ),
        (
            {"headers": '{"X-Tenant": "a\\u0000b"}'},
            {
                "headers": [
                    "This JSON cannot be used: The JSON contains a NUL character (\\u0000) or an unpaired surrogate."
                ]
            },
        ),
        ({"timeout_seconds": "0"}, {"timeout_seconds": ["Ensure this value is greater than or equal to 0.001."]}),
        (
            {"name": "no spaces"},
            {"name": ["Enter a valid “slug” consisting of letters, numbers, underscores or hyphens."]},
        ),
    ],
)
def test_invalid_backend_input_is_inline(web_client, changes, errors):
    response = web_client.post("/developers/backends/new/", {**SERVICE_FORM, **changes})

    assert response.status_code == 400
    assert response.context["form"].errors == errors
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_a_duplicate_backend_name_is_inline(web_client, tenant):
    BackendService.objects.create(tenant=tenant, name="ticketing", url="https://old.example.com")

    response = web_client.post("/developers/backends/new/", SERVICE_FORM)

    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["A backend service with this name already exists."]}
    assert BackendService.objects.dangerously_unscoped().get().url == "https://old.example.com"


def test_a_private_backend_address_is_refused_inline(web_client, strict_network):
    response = web_client.post("/developers/backends/new/", {**SERVICE_FORM, "url": "http://10.0.0.5/api"})

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "url": [
            "The platform will not call this address: 10.0.0.5 is a private, loopback or link-local address, "
            "which the platform does not call."
        ]
    }
    assert not BackendService.objects.dangerously_unscoped().exists()


def test_editing_a_backend_service(web_client, tenant):
    service = BackendService.objects.create(tenant=tenant, name="ticketing", url="https://t.example.com")

    page = web_client.get(f"/developers/backends/{service.pk}/edit/")
    response = web_client.post(
        f"/developers/backends/{service.pk}/edit/",
        {**SERVICE_FORM, "name": "renamed", "url": "https://t.example.com", "timeout_seconds": "7.5"},
    )

    assert page.status_code == 200 and page.context["form"].fields["name"].disabled
    assert response.status_code == 302
    service.refresh_from_db()
    assert (service.name, service.timeout_seconds, service.auth["type"]) == ("ticketing", 7.5, "bearer")
    assert not BackendService.objects.dangerously_unscoped().filter(name="renamed").exists()
    update = AuditLog.objects.for_tenant(tenant).get(action="backend_service.update")
    assert update.changes == {"fields": ["auth", "circuit_breaker", "headers", "retry", "timeout_seconds"]}


def test_deleting_a_backend_service(web_client, tenant):
    service = BackendService.objects.create(tenant=tenant, name="ticketing", url="https://t.example.com")

    response = web_client.post(f"/developers/backends/{service.pk}/delete/")

    assert (response.status_code, response["Location"]) == (302, "/developers/backends/")
    assert not BackendService.objects.dangerously_unscoped().exists()


@pytest.mark.parametrize("who", ["viewer_client", "member_client"])
def test_only_admins_change_backend_services(request, who, tenant):
    client = request.getfixturevalue(who)
    service = BackendService.objects.create(tenant=tenant, name="ticketing", url="https://t.example.com")

    assert client.post("/developers/backends/new/", {**SERVICE_FORM, "name": "other"}).status_code == 403
    assert client.post(f"/developers/backends/{service.pk}/edit/", SERVICE_FORM).status_code == 403
    assert client.post(f"/developers/backends/{service.pk}/delete/").status_code == 403
    assert list(BackendService.objects.dangerously_unscoped().values_list("name", "url")) == [
        ("ticketing", "https://t.example.com")
    ]


def test_another_tenants_backend_service_is_a_404(other_web_client, tenant):
    service = BackendService.objects.create(tenant=tenant, name="ticketing", url="https://t.example.com")

    assert other_web_client.get(f"/developers/backends/{service.pk}/edit/").status_code == 404
    assert other_web_client.post(f"/developers/backends/{service.pk}/edit/", SERVICE_FORM).status_code == 404
    assert other_web_client.post(f"/developers/backends/{service.pk}/delete/").status_code == 404
    assert BackendService.objects.dangerously_unscoped().get().url == "https://t.example.com"
