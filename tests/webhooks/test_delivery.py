"""Delivery through the outbox against a local receiver: signing, retries, disabling, replay, isolation."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from core.errors import Conflict
from integrations import netguard
from integrations.config import BreakerPolicy
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks import delivery, outbox, services
from tenants.models import Membership
from tests import factories
from tests.webhooks.helpers import emit, endpoint_for, fresh, make_due, send_due
from tests.webhooks.receiver import ReceiverServer

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


def attempts_of(row):
    return list(
        WebhookAttempt.objects.dangerously_unscoped()
        .filter(delivery=row)
        .order_by("number")
        .values_list("number", "outcome", "status_code")
    )


def test_an_event_is_delivered_once_signed_with_the_standard_headers(receiver, tenant):
    endpoint, secret = endpoint_for(tenant, receiver.url)
    [row] = emit(tenant, "call.ended", {"call_id": "c1", "duration_seconds": 127})

    assert send_due() == 1
    assert send_due() == 0

    [request] = receiver.receiver.requests
    assert request.headers["webhook-id"] == row.message_id and row.message_id.startswith("msg_")
    assert request.headers["content-type"] == "application/json"
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "call.ended" and event["data"] == {"call_id": "c1", "duration_seconds": 127}
    assert request.body.decode() == row.body
    row = fresh(row)
    assert (row.status, row.attempts, row.last_status_code, row.next_attempt_at) == (Status.SUCCEEDED, 1, 200, None)
    attempt = WebhookAttempt.objects.dangerously_unscoped().get(delivery=row)
    assert (attempt.number, attempt.outcome, attempt.status_code, attempt.response_excerpt) == (
        1,
        "succeeded",
        200,
        '{"ok": true}',
    )
    assert fresh(endpoint).last_success_at is not None


def test_a_failed_attempt_is_retried_after_the_seed_backoff_with_the_same_webhook_id(receiver, tenant):
    endpoint, secret = endpoint_for(tenant, receiver.url)
    receiver.receiver.behaviour = 500
    [row] = emit(tenant)

    send_due()
    row = fresh(row)
    wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert row.status == Status.PENDING and 58 <= wait <= 75  # 60 s, jittered up to +25%
    assert (row.last_status_code, row.last_error) == (
        500,
        f"Service 'webhook-{endpoint.pk}' answered HTTP 500 (1 attempt(s)).",
    )
    assert fresh(endpoint).failing_since is not None
    assert send_due() == 0  # not due yet

    receiver.receiver.behaviour = 200
    make_due(row)
    send_due()

    first, second = receiver.receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row.message_id
    assert first.body == second.body
    assert Webhook(secret).verify(second.body, second.headers)
    assert fresh(row).status == Status.SUCCEEDED
    assert attempts_of(row) == [(1, "http_error", 500), (2, "succeeded", 200)]
    assert fresh(endpoint).failing_since is None


def test_retry_delays_grow_from_60_seconds_to_an_hour():
    low = [round(delivery.retry_delay(n, rand=lambda: 0.0)) for n in range(1, 6)]
    high = [round(delivery.retry_delay(n, rand=lambda: 1.0)) for n in range(1, 6)]
    assert low == [60, 167, 465, 1293, 3600]
    assert high == [75, 209, 581, 1617, 3600]  # jitter never passes the maximum


def test_after_five_retries_a_delivery_fails_for_good(receiver, tenant, monkeypatch):
    # Retries here come back-to-back, not hours apart: keep the endpoint's breaker from opening meanwhile.
    service_for = delivery.service_for
    monkeypatch.setattr(delivery, "service_for", lambda e: replace(service_for(e), circuit_breaker=BreakerPolicy(100)))
    endpoint_for(tenant, receiver.url)
    receiver.receiver.behaviour = 503
    [row] = emit(tenant)

    for _ in range(6):
        make_due(row)
        send_due()

    row = fresh(row)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.FAILED, 6, None)
    assert len(receiver.receiver.requests) == 6
    make_due(row)
    assert delivery.webhook_deliver(delivery_id=row.pk) is None  # a late task does nothing
    assert len(receiver.receiver.requests) == 6


def test_410_gone_disables_the_endpoint_fails_what_was_pending_and_tells_the_tenant(receiver, tenant):
    owner = factories.UserFactory(username="owner", email="owner@acme.example")
    factories.MembershipFactory(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(email="viewer@acme.example"), role="viewer")
    endpoint, _ = endpoint_for(tenant, receiver.url)
    receiver.receiver.behaviour = 410
    [first] = emit(tenant)
    [second] = emit(tenant)
    WebhookDelivery.objects.dangerously_unscoped().filter(pk=second.pk).update(
        next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    with transaction.atomic():  # commit hooks (the email) run when this block's transaction commits
        send_due()

    endpoint = fresh(endpoint)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert [fresh(first).status, fresh(second).status] == [Status.FAILED, Status.FAILED]
    assert fresh(second).last_error == "endpoint disabled"
    assert attempts_of(first) == [(1, "gone", 410)]
    assert emit(tenant) == []  # a disabled endpoint stores no new events


def test_the_tenant_is_told_by_email_when_the_platform_disables_its_endpoint(
    tenant, django_capture_on_commit_callbacks
):
    owner = factories.UserFactory(username="owner", email="owner@acme.example")
    factories.MembershipFactory(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    endpoint = factories.WebhookEndpointFactory(tenant=tenant)

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_endpoint_disable(endpoint=endpoint, reason="gone", notify=True)

    [message] = mail.outbox
    assert message.to == ["owner@acme.example"]
    assert message.subject == f"Webhook endpoint disabled: {endpoint.url}"
    assert "410 gone" in message.body and f"/v1/webhooks/{endpoint.pk}/replay" in message.body


def test_a_slow_receiver_is_a_failed_attempt(settings, tenant):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    with ReceiverServer(behaviour=("sleep", 1.5, 200)) as slow:
        endpoint_for(tenant, slow.url)
        [row] = emit(tenant)
        send_due()

    attempt = WebhookAttempt.objects.dangerously_unscoped().get(delivery=row)
    assert attempt.outcome == "timeout" and 450 <= attempt.duration_ms < 1400
    assert fresh(row).status == Status.PENDING


def test_a_reset_connection_is_a_failed_attempt(tenant):
    with ReceiverServer(behaviour="reset") as resetting:
        endpoint_for(tenant, resetting.url)
        [row] = emit(tenant)
        send_due()

    assert attempts_of(row) == [(1, "connection_error", None)]
    assert fresh(row).status == Status.PENDING


def test_failing_for_a_day_disables_the_endpoint(receiver, tenant):
    endpoint, _ = endpoint_for(tenant, receiver.url)
    receiver.receiver.behaviour = 500
    WebhookEndpoint.objects.dangerously_unscoped().filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=23)
    )
    emit(tenant)
    send_due()
    assert fresh(endpoint).enabled  # 23 hours is not a day

    WebhookEndpoint.objects.dangerously_unscoped().filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=24, minutes=1)
    )
    emit(tenant)
    send_due()

    endpoint = fresh(endpoint)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    assert not WebhookDelivery.objects.dangerously_unscoped().filter(endpoint=endpoint, status=Status.PENDING).exists()


def test_enabling_again_and_replaying_since_a_time_sends_what_was_missed(receiver, tenant):
    endpoint, secret = endpoint_for(tenant, receiver.url)
    missed = [emit(tenant, data={"n": n})[0] for n in range(3)]
    services.webhook_endpoint_disable(endpoint=endpoint, reason="manual")
    WebhookDelivery.objects.dangerously_unscoped().filter(pk=missed[0].pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )

    with pytest.raises(Conflict, match="enable it first"):
        services.webhook_deliveries_replay_failed(endpoint=endpoint, since=timezone.now() - timedelta(days=1))
    endpoint = services.webhook_endpoint_update(endpoint=endpoint, enabled=True)
    replayed = services.webhook_deliveries_replay_failed(endpoint=endpoint, since=timezone.now() - timedelta(days=1))
    send_due()

    assert (endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since) == (True, "", None)
    assert replayed == 2
    received = {r.headers["webhook-id"] for r in receiver.receiver.requests}
    assert received == {missed[1].message_id, missed[2].message_id}
    assert all(Webhook(secret).verify(r.body, r.headers) for r in receiver.receiver.requests)
    assert fresh(missed[0]).status == Status.FAILED


def test_replaying_one_delivery_resends_the_same_id_and_body_in_a_new_cycle(receiver, tenant):
    endpoint_for(tenant, receiver.url)
    [row] = emit(tenant)
    send_due()

    row = services.webhook_delivery_replay(delivery=fresh(row))
    assert (row.status, row.cycle_attempts, row.attempts) == (Status.PENDING, 0, 1)
    with pytest.raises(Conflict, match="already scheduled"):
        services.webhook_delivery_replay(delivery=row)
    send_due()

    first, second = receiver.receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    assert attempts_of(row) == [(1, "succeeded", 200), (2, "succeeded", 200)]
    assert fresh(row).replayed_at is not None


def test_another_tenants_endpoint_never_receives_your_events(tenant, other_tenant):
    with ReceiverServer() as ours, ReceiverServer() as theirs:
        endpoint_for(tenant, ours.url)
        endpoint_for(other_tenant, theirs.url)
        emit(tenant, "call.ended", {"call_id": "ours"})
        send_due()

        assert len(ours.receiver.requests) == 1
        assert theirs.receiver.requests == []
    assert WebhookDelivery.objects.for_tenant(other_tenant).count() == 0


def test_only_enabled_endpoints_subscribed_to_the_event_get_it(tenant):
    ended_only, _ = endpoint_for(tenant, "https://hooks.example.com/ended", event_types=["call.ended"])
    endpoint_for(tenant, "https://hooks.example.com/off", enabled=False)

    assert emit(tenant, "call.started") == []
    [row] = emit(tenant, "call.ended")
    assert row.endpoint == ended_only
    with pytest.raises(ValueError, match="not in the webhook event catalog"):
        emit(tenant, "call.exploded")


def test_the_event_is_stored_with_the_change_that_caused_it_or_not_at_all(tenant):
    endpoint_for(tenant, "https://hooks.example.com/a")
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.webhook_emit(tenant_id=tenant.pk, event_type="call.ended", data={})
        raise RuntimeError("the change failed")
    assert not WebhookDelivery.objects.dangerously_unscoped().exists()


def test_the_body_is_type_timestamp_and_data(tenant):
    endpoint_for(tenant, "https://hooks.example.com/a")
    [row] = emit(tenant, "call.ended", {"call_id": "c1", "at": timezone.now(), "cost": "0.10"})
    body = json.loads(row.body)
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "call.ended" and body["timestamp"].endswith("Z")
    assert body["data"]["at"].endswith("Z")


def test_private_addresses_are_refused_without_sending(receiver, settings, tenant):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    netguard.forget()
    endpoint_for(tenant, receiver.url)
    [row] = emit(tenant)
    send_due()

    assert receiver.receiver.requests == []
    [attempt] = WebhookAttempt.objects.dangerously_unscoped().filter(delivery=row)
    assert attempt.outcome == "refused" and "private, loopback or link-local" in attempt.error


def test_an_open_circuit_breaker_defers_without_using_an_attempt(receiver, tenant):
    endpoint_for(tenant, receiver.url)
    receiver.receiver.behaviour = 500
    for _ in range(5):  # the breaker's threshold
        emit(tenant)
    send_due()
    [waiting] = emit(tenant)
    send_due()

    assert len(receiver.receiver.requests) == 5
    waiting = fresh(waiting)
    assert (waiting.status, waiting.attempts, waiting.cycle_attempts) == (Status.PENDING, 0, 0)
    assert waiting.next_attempt_at > timezone.now() + timedelta(seconds=50)
    assert not WebhookAttempt.objects.dangerously_unscoped().filter(delivery=waiting).exists()


def test_a_worker_killed_mid_attempt_leaves_the_delivery_to_the_sweeper(receiver, tenant):
    endpoint_for(tenant, receiver.url)
    [row] = emit(tenant)
    assert outbox.delivery_claim(delivery_id=row.pk) is not None  # ...and the worker dies here

    assert send_due() == 0  # leased: nobody else sends it while the attempt may still be running
    later = timezone.now() + outbox.attempt_lease() + timedelta(seconds=1)
    ids, token = outbox.deliveries_claim_due(now=later)
    assert ids == [row.pk]
    assert delivery.webhook_deliver(delivery_id=row.pk, token=token) == Status.SUCCEEDED
    assert fresh(row).attempts == 2  # the lost attempt counts: a poison delivery cannot loop forever
    assert attempts_of(row) == [(2, "succeeded", 200)]


def test_a_queued_task_and_the_sweeper_never_both_send(
    receiver, tenant, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(outbox, "broker_available", lambda: True)
    monkeypatch.setattr(outbox, "enqueue", lambda ids, token: queued.append((ids, token)))
    endpoint_for(tenant, receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        [row] = emit(tenant)

    [(ids, token)] = queued
    assert ids == [row.pk] and fresh(row).dispatch_token == token
    assert outbox.deliveries_claim_due()[0] == []  # queued: the sweeper leaves it to the task
    assert delivery.webhook_deliver(delivery_id=row.pk, token=str(token)) == Status.SUCCEEDED
    assert delivery.webhook_deliver(delivery_id=row.pk, token=str(token)) is None  # a redelivered message
    assert len(receiver.receiver.requests) == 1


def test_a_lost_queue_message_is_queued_again_after_the_lease(tenant, monkeypatch):
    monkeypatch.setattr(outbox, "broker_available", lambda: True)
    monkeypatch.setattr(outbox, "enqueue", lambda ids, token: None)  # the broker loses it
    endpoint_for(tenant, "https://hooks.example.com/a")
    [row] = emit(tenant)
    first_token = fresh(row).dispatch_token

    later = timezone.now() + outbox.dispatch_lease() + timedelta(seconds=1)
    ids, token = outbox.deliveries_claim_due(now=later)

    assert ids == [row.pk] and token != first_token
    assert outbox.delivery_claim(delivery_id=row.pk, token=first_token) is None  # the old message, if it shows up


def test_a_delivery_in_flight_or_waiting_for_its_retry_is_not_taken_again(receiver, tenant):
    endpoint_for(tenant, receiver.url)
    [in_flight] = emit(tenant)
    assert outbox.delivery_claim(delivery_id=in_flight.pk) is not None
    [retrying] = emit(tenant)
    WebhookDelivery.objects.dangerously_unscoped().filter(pk=retrying.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )

    assert delivery.webhook_deliver(delivery_id=in_flight.pk) is None
    assert delivery.webhook_deliver(delivery_id=retrying.pk) is None
    assert receiver.receiver.requests == []


def test_a_task_takes_other_waiting_deliveries_with_its_own(receiver, tenant, monkeypatch):
    monkeypatch.setattr(outbox, "broker_available", lambda: True)
    monkeypatch.setattr(outbox, "enqueue", lambda ids, token: None)
    endpoint_for(tenant, receiver.url)
    rows = [emit(tenant, data={"n": n})[0] for n in range(3)]
    first = fresh(rows[0])

    assert delivery.webhook_deliver(delivery_id=first.pk, token=first.dispatch_token) == Status.SUCCEEDED

    assert {r.headers["webhook-id"] for r in receiver.receiver.requests} == {r.message_id for r in rows}
    second = fresh(rows[1])
    assert delivery.webhook_deliver(delivery_id=second.pk, token=rows[1].dispatch_token) is None  # already sent
    assert len(receiver.receiver.requests) == 3


def test_an_endpoint_deleted_during_the_attempts_takes_only_its_own_deliveries(receiver, tenant, other_tenant):
    doomed, _ = endpoint_for(tenant, receiver.url)
    endpoint_for(other_tenant, receiver.url)
    emit(tenant)
    [kept] = emit(other_tenant)
    batch = outbox.deliveries_claim(limit=10)
    results = delivery.attempt_many(batch)

    services.webhook_endpoint_delete(endpoint=doomed)
    statuses = delivery.record(list(zip(batch, results, strict=True)))

    assert statuses == {kept.pk: Status.SUCCEEDED}
    assert list(WebhookAttempt.objects.dangerously_unscoped().values_list("delivery_id", flat=True)) == [kept.pk]
