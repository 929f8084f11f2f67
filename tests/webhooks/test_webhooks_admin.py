"""Admin: endpoints through the services (secret shown once), deliveries with attempts, replay, the schedule."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks import services, signing
from tests import factories

pytestmark = pytest.mark.django_db


def url(model, view, *args):
    return reverse(f"admin:integrations_{model._meta.model_name}_{view}", args=args)


def messages_of(response):
    return [m.message for m in response.context["messages"]]


def test_adding_an_endpoint_shows_its_secret_once(staff_client, tenant):
    data = {"tenant": tenant.pk, "url": "https://hooks.example.com/a", "event_types": ["call.ended"], "enabled": "on"}
    response = staff_client.post(url(WebhookEndpoint, "add"), data, follow=True)

    secret = re.search(r"it will not be shown again: (whsec_[A-Za-z0-9+/=]+)", response.content.decode()).group(1)
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).get()
    assert services.endpoint_secrets(endpoint) == [secret]
    assert endpoint.event_types == ["call.ended"]
    page = staff_client.get(url(WebhookEndpoint, "change", endpoint.pk)).content.decode()
    assert secret not in page


def test_endpoint_and_delivery_pages_render(staff_client, tenant):
    delivery = factories.WebhookDeliveryFactory(endpoint=factories.WebhookEndpointFactory(tenant=tenant))
    factories.WebhookAttemptFactory(delivery=delivery, number=1)
    for page in (
        url(WebhookEndpoint, "changelist"),
        url(WebhookEndpoint, "change", delivery.endpoint.pk),
        url(WebhookEndpoint, "add"),
        url(WebhookDelivery, "changelist"),
        url(WebhookDelivery, "change", delivery.pk),
    ):
        assert staff_client.get(page).status_code == 200, page
    assert staff_client.get(url(WebhookDelivery, "add")).status_code == 403
    found = staff_client.get(url(WebhookDelivery, "changelist"), {"q": delivery.message_id}).content.decode()
    assert url(WebhookDelivery, "change", delivery.pk) in found


def test_replay_selected_deliveries(staff_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    failed = factories.WebhookDeliveryFactory(endpoint=endpoint)
    pending = factories.WebhookDeliveryFactory(endpoint=endpoint, status="pending")

    response = staff_client.post(
        url(WebhookDelivery, "changelist"),
        {"action": "replay_deliveries", "_selected_action": [failed.pk, pending.pk]},
        follow=True,
    )

    assert "1 deliveries queued again." in messages_of(response)
    assert WebhookDelivery.objects.dangerously_unscoped().get(pk=failed.pk).status == "pending"


def test_replay_failed_since_asks_for_the_time_then_replays(staff_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)
    factories.WebhookDeliveryFactory(endpoint=endpoint)
    selected = {"action": "replay_failed_since", "_selected_action": [endpoint.pk]}

    asked = staff_client.post(url(WebhookEndpoint, "changelist"), selected)
    done = staff_client.post(
        url(WebhookEndpoint, "changelist"), {**selected, "apply": "Replay", "since": "2020-01-01 00:00"}, follow=True
    )

    assert asked.status_code == 200 and 'name="since"' in asked.content.decode()
    assert "1 failed deliveries queued again." in messages_of(done)
    assert WebhookDelivery.objects.dangerously_unscoped().get().status == "pending"


def test_rotate_secret_action_shows_the_new_secret_once(staff_client, tenant):
    endpoint = factories.WebhookEndpointFactory(tenant=tenant, secret=signing.generate_secret())
    response = staff_client.post(
        url(WebhookEndpoint, "changelist"), {"action": "rotate_secrets", "_selected_action": [endpoint.pk]}, follow=True
    )
    [message] = messages_of(response)
    endpoint.refresh_from_db()
    new = message.rsplit(" ", 1)[-1]
    assert services.endpoint_secrets(endpoint)[0] == new and len(services.endpoint_secrets(endpoint)) == 2
    assert new not in staff_client.get(url(WebhookEndpoint, "change", endpoint.pk)).content.decode()


def test_every_schedule_is_editable_in_the_admin(staff_client):
    call_command("setup_periodic_tasks", stdout=StringIO())
    task = PeriodicTask.objects.get(name="webhooks_dispatch_due")
    page = staff_client.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]))
    listing = staff_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    assert page.status_code == 200
    assert all(name in listing for name in ("webhooks_dispatch_due", "apply_retention", "aggregate_usage"))
