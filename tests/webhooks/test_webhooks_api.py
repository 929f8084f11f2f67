"""/v1/webhooks and /v1/webhook-deliveries: CRUD, the secret shown once, rotation, deliveries, replay."""

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks import signing
from tenants.models import AuditLog
from tests import factories
from tests.webhooks.helpers import emit, fresh, send_due

pytestmark = pytest.mark.django_db

BODY = {"url": "https://hooks.example.com/voice", "event_types": ["call.ended", "call.analyzed"]}


def create(api_client, **changes):
    response = api_client.post("/v1/webhooks", {**BODY, **changes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_returns_the_secret_once_and_never_again(api_client, tenant):
    body = create(api_client, description="CRM")

    endpoint = WebhookEndpoint.objects.for_tenant(tenant).get()
    assert body["secret"].startswith("whsec_")
    assert {k: body[k] for k in ("id", "url", "event_types", "enabled", "description")} == {
        "id": str(endpoint.pk),
        "url": "https://hooks.example.com/voice",
        "event_types": ["call.analyzed", "call.ended"],
        "enabled": True,
        "description": "CRM",
    }
    shown = [api_client.get(f"/v1/webhooks/{endpoint.pk}").json(), api_client.get("/v1/webhooks").json()]
    assert body["secret"] not in str(shown) and "secret" not in shown[0]
    assert body["secret"].encode() not in bytes(endpoint.secret_ciphertext)
    audit = AuditLog.objects.for_tenant(tenant).get(action="webhook_endpoint.create")
    assert body["secret"] not in str(audit.changes)


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"event_types": ["call.exploded"]}, "event_types.0", "validation_error"),
        ({"event_types": []}, "event_types", "validation_error"),
        ({"url": "ftp://hooks.example.com"}, "url", "invalid_url"),
    ],
)
def test_create_validates_url_and_event_types(api_client, changes, field, code):
    response = api_client.post("/v1/webhooks", {**BODY, **changes}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and field in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.dangerously_unscoped().exists()


def test_https_is_required_in_production(api_client, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    response = api_client.post("/v1/webhooks", {**BODY, "url": "http://hooks.example.com/voice"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "https_required",
        "message": "url: Must be an https URL.",
        "fields": {"url": ["Must be an https URL."]},
    }


def test_writes_need_the_admin_scope(make_client, tenant):
    writer = make_client(tenant, scopes=("read", "write"))
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    assert writer.post("/v1/webhooks", BODY, format="json").status_code == 403
    assert writer.patch(f"/v1/webhooks/{endpoint.pk}", {"enabled": False}, format="json").status_code == 403
    assert writer.post(f"/v1/webhooks/{endpoint.pk}/rotate-secret", {}, format="json").status_code == 403
    assert writer.get(f"/v1/webhooks/{endpoint.pk}").status_code == 200
    assert fresh(endpoint).enabled


def test_update_disable_enable_and_delete(api_client, tenant):
    endpoint_id = create(api_client)["id"]
    [delivery] = emit(tenant)

    off = api_client.patch(f"/v1/webhooks/{endpoint_id}", {"enabled": False}, format="json").json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "manual")
    assert fresh(delivery).status == WebhookDelivery.Status.FAILED  # replayable once enabled again
    on = api_client.patch(
        f"/v1/webhooks/{endpoint_id}",
        {"enabled": True, "event_types": ["*"], "url": "https://b.example.com"},
        format="json",
    ).json()
    assert (on["enabled"], on["disabled_reason"], on["event_types"], on["url"]) == (
        True,
        "",
        ["*"],
        "https://b.example.com",
    )
    assert api_client.delete(f"/v1/webhooks/{endpoint_id}").status_code == 204
    assert (
        not WebhookEndpoint.objects.dangerously_unscoped().exists()
        and not WebhookDelivery.objects.dangerously_unscoped().exists()
    )


def test_rotating_returns_a_new_secret_and_both_sign_during_the_overlap(api_client, tenant, receiver):
    created = create(api_client, url=receiver.url, event_types=["*"])
    rotated = api_client.post(f"/v1/webhooks/{created['id']}/rotate-secret", {"overlap_hours": 2}, format="json")

    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != created["secret"] and new.startswith("whsec_")
    emit(tenant)
    send_due()
    [request] = receiver.receiver.requests
    assert Webhook(created["secret"]).verify(request.body, request.headers)
    assert Webhook(new).verify(request.body, request.headers)


def test_deliveries_list_with_attempts_filtered_by_status(api_client, tenant, receiver):
    endpoint_id = create(api_client, url=receiver.url, event_types=["*"])["id"]
    receiver.receiver.behaviour = lambda r: 500 if b'"n":0' in r.body else 200
    failing = emit(tenant, data={"n": 0})[0]
    emit(tenant, data={"n": 1})
    send_due()

    everything = api_client.get(f"/v1/webhooks/{endpoint_id}/deliveries").json()
    pending = api_client.get(f"/v1/webhooks/{endpoint_id}/deliveries?status=pending").json()

    assert everything["count"] == 2
    assert [d["id"] for d in pending["results"]] == [str(failing.pk)]
    [attempt] = pending["results"][0]["attempt_log"]
    assert {k: attempt[k] for k in ("number", "outcome", "status_code", "response_excerpt")} == {
        "number": 1,
        "outcome": "http_error",
        "status_code": 500,
        "response_excerpt": '{"error": "nope"}',
    }
    detail = api_client.get(f"/v1/webhook-deliveries/{failing.pk}").json()
    assert detail["message_id"] == failing.message_id and detail["body"] == failing.body
    assert api_client.get(f"/v1/webhooks/{endpoint_id}/deliveries?status=lost").status_code == 400


def test_replay_one_delivery_and_all_failed_since(api_client, tenant, receiver):
    endpoint_id = create(api_client, url=receiver.url, event_types=["*"])["id"]
    receiver.receiver.behaviour = 500
    rows = [emit(tenant, data={"n": n})[0] for n in range(2)]
    WebhookDelivery.objects.dangerously_unscoped().update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    receiver.receiver.behaviour = 200

    one = api_client.post(f"/v1/webhook-deliveries/{rows[0].pk}/replay")
    again = api_client.post(f"/v1/webhook-deliveries/{rows[0].pk}/replay")
    since = api_client.post(f"/v1/webhooks/{endpoint_id}/replay", {"since": "2020-01-01T00:00:00Z"}, format="json")
    send_due()

    assert (one.status_code, one.json()["status"]) == (202, "pending")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "webhook_delivery_pending")
    assert (since.status_code, since.json()) == (202, {"replayed": 1})
    assert {r.headers["webhook-id"] for r in receiver.receiver.requests} == {row.message_id for row in rows}
    assert {fresh(row).status for row in rows} == {WebhookDelivery.Status.SUCCEEDED}


def test_replay_to_a_disabled_endpoint_is_a_409(api_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, enabled=False, disabled_reason="gone")
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint)

    response = api_client.post(f"/v1/webhook-deliveries/{delivery.pk}/replay")
    since = api_client.post(f"/v1/webhooks/{endpoint.pk}/replay", {"since": "2020-01-01T00:00:00Z"}, format="json")

    assert response.status_code == since.status_code == 409
    assert response.json()["error"]["code"] == "webhook_endpoint_disabled"
    assert fresh(delivery).status == WebhookDelivery.Status.FAILED


def test_the_event_type_catalog(api_client):
    body = api_client.get("/v1/webhook-event-types?limit=100").json()
    types = [row["type"] for row in body["results"]]
    assert types == [
        "call.started",
        "call.ended",
        "call.failed",
        "call.transferred",
        "transcript.completed",
        "call.analyzed",
        "tool.failed",
        "usage.threshold_reached",
        "webhook.test",
    ]
    assert all(row["description"] and row["example"] for row in body["results"])


def test_the_signing_format_matches_the_reference_library_byte_for_byte():
    secret = signing.generate_secret()
    body, timestamp = '{"a":1}', int(time.time())
    ours = signing.sign(secret, message_id="msg_x", timestamp=timestamp, body=body)
    reference = Webhook(secret).sign("msg_x", datetime.fromtimestamp(timestamp, tz=UTC), body)
    assert ours == reference
