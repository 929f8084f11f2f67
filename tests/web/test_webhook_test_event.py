"""Item 14: send a test event to a webhook endpoint: a real signed delivery through the outbox, in its log."""

import json

import pytest
from standardwebhooks import Webhook

from integrations.models import WebhookDelivery
from integrations.webhooks.catalog import EVENT_TYPES
from tenants.models import AuditLog
from tests import factories
from tests.webhooks.helpers import endpoint_for, send_due
from tests.webhooks.receiver import ReceiverServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True  # the receiver listens on 127.0.0.1
    with ReceiverServer() as server:
        yield server


def test_a_test_event_is_signed_delivered_to_that_endpoint_only_and_logged(web_client, tenant, receiver):
    endpoint, secret = endpoint_for(tenant, receiver.url, event_types=["call.ended"])  # not subscribed to it
    other, _ = endpoint_for(tenant, receiver.url + "other", event_types=["*"])

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/test/", follow=True)

    [delivery] = WebhookDelivery.objects.for_tenant(tenant)
    assert (delivery.endpoint_id, delivery.event_type) == (endpoint.pk, "webhook.test")
    assert f"Test event {delivery.message_id} is on its way" in response.content.decode()
    assert send_due() == 1
    [request] = receiver.receiver.requests
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "webhook.test"
    assert event["data"] == {"endpoint_id": str(endpoint.pk), "message": "This is a test event.", "sent_by": "alice"}
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    log = web_client.get(f"/developers/webhooks/{endpoint.pk}/").content.decode()
    assert "webhook.test" in log and delivery.message_id in log
    assert not WebhookDelivery.objects.dangerously_unscoped().filter(endpoint=other).exists()
    audit = AuditLog.objects.for_tenant(tenant).get(action="webhook_endpoint.test")
    assert audit.changes == {"message_id": delivery.message_id}
    assert json.loads(delivery.body)["type"] == "webhook.test"


def test_the_test_event_is_in_the_catalog():
    assert "webhook.test" in EVENT_TYPES


def test_a_disabled_endpoint_gets_no_test_event(web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, enabled=False)

    response = web_client.post(f"/developers/webhooks/{endpoint.pk}/test/", follow=True)

    assert "The endpoint is disabled: enable it first." in response.content.decode()
    assert not WebhookDelivery.objects.dangerously_unscoped().exists()


def test_only_admins_send_test_events_and_only_to_their_endpoints(member_client, other_web_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    assert member_client.post(f"/developers/webhooks/{endpoint.pk}/test/").status_code == 403
    assert other_web_client.post(f"/developers/webhooks/{endpoint.pk}/test/").status_code == 404
    assert not WebhookDelivery.objects.dangerously_unscoped().exists()
