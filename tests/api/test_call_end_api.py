"""POST /v1/calls/{id}/end: a live call is asked to hang up (202, audited); an ended one is a 409."""

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

from calls.models import Call
from calls.services import call_transition
from tenants.models import AuditLog, Membership
from tests import factories
from tests.api.conftest import key_client
from tests.api.test_errors import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_call(tenant):
    call = factories.CallFactory(tenant=tenant)
    for status in ("ringing", "connected", "conversing"):
        call = call_transition(call=call, to_status=status)
    return call


@pytest.fixture
def bridge(live_call):
    """What the bridge running the call hears on its call group."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"call.{live_call.pk}", channel)

    def heard() -> list[dict]:
        # A marker of our own goes in last: everything received before it was sent before it (FIFO), and
        # receiving never waits on a message that might not come.
        async_to_sync(layer.send)(channel, {"type": "test.marker"})
        messages = []
        while (message := async_to_sync(layer.receive)(channel))["type"] != "test.marker":
            messages.append(message)
        return messages

    return heard


def end_url(call) -> str:
    return f"/v1/calls/{call.pk}/end"


def test_ending_a_live_call_asks_its_bridge_to_hang_up_and_answers_with_the_call(
    api_client, tenant, live_call, bridge, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(end_url(live_call), HTTP_X_REQUEST_ID="req-end")
    assert response.status_code == 202
    data = response.json()
    assert (data["id"], data["status"], data["recording_url"]) == (str(live_call.pk), "conversing", None)
    assert [m["type"] for m in bridge()] == ["bridge.hangup"]
    row = AuditLog.objects.for_tenant(tenant).get(action="call.end")
    assert (row.object_id, row.changes, row.request_id) == (str(live_call.pk), {"status": "conversing"}, "req-end")
    assert row.actor_label == f"api key {row.actor_api_key.prefix}"


def test_ending_an_ended_call_is_a_409_and_nothing_is_sent(
    api_client, tenant, live_call, bridge, django_capture_on_commit_callbacks
):
    Call.objects.dangerously_unscoped().filter(pk=live_call.pk).update(
        status="ended", ended_at=live_call.started_at + timedelta(seconds=5), duration_seconds=5
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(end_url(live_call))
    assert_error(response, 409, "call_not_active")
    assert bridge() == []
    assert not AuditLog.objects.for_tenant(tenant).filter(action="call.end").exists()


def test_a_retry_with_the_same_idempotency_key_is_replayed_not_sent_twice(
    api_client, tenant, live_call, bridge, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = api_client.post(end_url(live_call), HTTP_IDEMPOTENCY_KEY="end-once")
        second = api_client.post(end_url(live_call), HTTP_IDEMPOTENCY_KEY="end-once")
    assert (first.status_code, second.status_code) == (202, 202)
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert len(bridge()) == 1
    assert AuditLog.objects.for_tenant(tenant).filter(action="call.end").count() == 1


def test_a_read_only_key_or_a_viewer_cannot_end_a_call(tenant, live_call, bridge, django_capture_on_commit_callbacks):
    viewer = factories.UserFactory()
    Membership.objects.create(tenant=tenant, user=viewer, role=Membership.Role.VIEWER)
    session = Client()
    session.force_login(viewer)
    with django_capture_on_commit_callbacks(execute=True):
        by_key = key_client(tenant, ["read"]).post(end_url(live_call))
        by_viewer = session.post(end_url(live_call))
    assert_error(by_key, 403, "insufficient_permissions")
    assert_error(by_viewer, 403, "insufficient_permissions")
    assert bridge() == []
    assert not AuditLog.objects.for_tenant(tenant).filter(action="call.end").exists()


def test_another_tenants_call_is_a_404_like_a_missing_one(api_client, other_tenant, django_capture_on_commit_callbacks):
    theirs = factories.CallFactory(tenant=other_tenant)
    for status in ("ringing", "connected", "conversing"):
        theirs = call_transition(call=theirs, to_status=status)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        foreign = api_client.post(end_url(theirs))
    missing = api_client.post(f"/v1/calls/{uuid.uuid4()}/end")
    assert_error(foreign, 404, "resource_missing")
    assert foreign.json() == missing.json()
    assert callbacks == []
    assert not AuditLog.objects.dangerously_unscoped().filter(action="call.end").exists()


def test_the_answer_links_the_calls_recording(api_client, live_call):
    factories.RecordingFactory(call=live_call)
    response = api_client.post(end_url(live_call))
    assert response.json()["recording_url"] == f"http://testserver/v1/calls/{live_call.pk}/recording"


def test_ending_an_outbound_call_not_dialled_yet_cancels_it_and_its_dial_never_happens(
    api_client, tenant, monkeypatch, django_capture_on_commit_callbacks
):
    from calls import carriers, services, tasks

    factories.SubscriptionFactory(tenant=tenant)
    agent = factories.AgentFactory(tenant=tenant)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    monkeypatch.setattr(tasks.call_initiate, "delay", lambda **kwargs: None)  # the dial task is still queued
    call = services.call_start_outbound(tenant=tenant, agent=agent, to_number="+15557654321")
    from tests.tasks.test_outbound_dial_sweep import RecordingDialer

    dialer = RecordingDialer()
    monkeypatch.setitem(carriers._dialers, "gotoconnect", dialer)
    dialled = dialer.dialled

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(end_url(call))
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["end_reason"]) == ("ended", "canceled")
    tasks.call_initiate(call_id=str(call.pk), tenant_id=str(tenant.pk))  # the queued task runs at last
    assert tasks.dial_due_calls() == 0
    assert dialled == []
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.dial_due_at) == ("ended", "canceled", None)
