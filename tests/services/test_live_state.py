"""Live call state follows the stored events, in Redis and in the local cache, and is rebuilt after a loss."""

import os

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import call_command

from calls import live_state, services
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus
from tests import factories

REDIS_TEST_URL = os.environ.get("LIVE_STATE_REDIS_URL", "redis://127.0.0.1:6379/10")  # the tests' own


@pytest.fixture(params=["local", "redis"])
def backend(request, settings):
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
        except redis.RedisError as exc:
            if os.environ.get("CI"):
                pytest.fail(f"Redis at {REDIS_TEST_URL} must answer under CI: {exc}")
            pytest.skip(f"no Redis at {REDIS_TEST_URL}: {exc}")
        settings.REDIS_URL = REDIS_TEST_URL
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    else:
        settings.REDIS_URL = ""
    yield request.param
    if request.param == "redis":
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()


def forget(call_id, backend):
    """Lose the live state, as a Redis restart would."""
    if backend == "redis":
        redis.Redis.from_url(REDIS_TEST_URL).delete(live_state.state_key(call_id), live_state.context_key(call_id))
    else:
        from django.core.cache import cache

        cache.delete_many([live_state.state_key(call_id), live_state.context_key(call_id)])


def run_a_call(call, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=call, to_status=CallStatus.RINGING)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_event_record(
            call=call,
            event_type=CallEvent.Type.ROOM_READY,
            payload={"room_name": call.room_name, "call_id": str(call.pk), "agent_id": str(call.agent_id)},
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=call, to_status=CallStatus.CONNECTED)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=call, to_status=CallStatus.CONVERSING)
    for number, (speaker, text) in enumerate([("agent", "Hello, Acme Dental."), ("caller", "Book me in.")], 1):
        with django_capture_on_commit_callbacks(execute=True):
            services.call_event_record(
                call=call,
                event_type=CallEvent.Type.TRANSCRIPT_TURN,
                payload={"turn_number": number, "speaker": speaker, "text": text, "call_id": str(call.pk)},
            )


@pytest.fixture
def call(tenant):
    call = factories.CallFactory(tenant=tenant, direction=Call.Direction.INBOUND)
    call.room_name = services.room_name_for(call)
    call.save()
    return call


def test_state_and_context_follow_the_stored_events(backend, call, django_capture_on_commit_callbacks):
    run_a_call(call, django_capture_on_commit_callbacks)
    state = live_state.get_state(call.pk)
    assert state["status"] == "conversing"
    assert state["tenant_id"] == str(call.tenant_id)
    assert state["agent_id"] == str(call.agent_id)
    assert state["room_name"] == f"call-{call.tenant_id}-{call.pk}"
    assert state["last_sequence"] == str(CallEvent.objects.dangerously_unscoped().filter(call=call).count())
    history = live_state.get_context(call.pk)["conversation_history"]
    assert [(turn["speaker"], turn["text"]) for turn in history] == [
        ("agent", "Hello, Acme Dental."),
        ("caller", "Book me in."),
    ]


def test_ended_call_keeps_its_state_for_the_ttl_only(backend, call, settings, django_capture_on_commit_callbacks):
    settings.CALL_STATE_TTL_SECONDS = 120
    run_a_call(call, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=call, to_status=CallStatus.ENDED, end_reason=Call.EndReason.CALLER_HANGUP)
    state = live_state.get_state(call.pk)
    assert (state["status"], state["end_reason"]) == ("ended", "caller_hangup")
    if backend == "redis":
        ttl = redis.Redis.from_url(REDIS_TEST_URL).ttl(live_state.state_key(call.pk))
        assert 0 < ttl <= 120


def test_lost_state_is_rebuilt_from_stored_events(backend, call, django_capture_on_commit_callbacks):
    run_a_call(call, django_capture_on_commit_callbacks)
    before, context_before = live_state.get_state(call.pk), live_state.get_context(call.pk)
    forget(call.pk, backend)
    assert live_state.get_state(call.pk) == {}
    call_command("rebuild_call_state")
    assert live_state.get_state(call.pk) == before
    assert live_state.get_context(call.pk) == context_before


def test_an_event_applied_twice_counts_once_and_a_gap_rebuilds(backend, call, django_capture_on_commit_callbacks):
    run_a_call(call, django_capture_on_commit_callbacks)
    last = CallEvent.objects.dangerously_unscoped().filter(call=call).order_by("sequence").last()
    live_state.apply_event(last)  # a repeated apply (two processes) changes nothing
    assert len(live_state.get_context(call.pk)["conversation_history"]) == 2
    # An event stored without its live update (a process died between commit and apply) ...
    CallEvent.objects.create(
        tenant=call.tenant,
        call=call,
        sequence=last.sequence + 1,
        event_type=CallEvent.Type.TRANSCRIPT_TURN,
        payload={"turn_number": 3, "speaker": "agent", "text": "Tuesday at nine?"},
        occurred_at=last.occurred_at,
    )
    with django_capture_on_commit_callbacks(execute=True):  # ... is caught up when the next one arrives
        services.call_event_record(
            call=call,
            event_type=CallEvent.Type.TRANSCRIPT_TURN,
            payload={"turn_number": 4, "speaker": "caller", "text": "Yes please."},
        )
    texts = [turn["text"] for turn in live_state.get_context(call.pk)["conversation_history"]]
    assert texts[-2:] == ["Tuesday at nine?", "Yes please."]


def test_redis_failure_never_fails_the_write(call, settings, django_capture_on_commit_callbacks):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=call, to_status=CallStatus.RINGING)
    assert Call.objects.dangerously_unscoped().get(pk=call.pk).status == "ringing"


def test_every_stored_event_goes_out_on_the_bus_with_its_sequence(call, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    on_call, on_tenant = async_to_sync(layer.new_channel)(), async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"call.{call.pk}", on_call)
    async_to_sync(layer.group_add)(f"tenant.{call.tenant_id}", on_tenant)
    run_a_call(call, django_capture_on_commit_callbacks)
    stored = list(
        CallEvent.objects.dangerously_unscoped()
        .filter(call=call)
        .order_by("sequence")
        .values_list("sequence", "event_type")
    )
    for channel in (on_call, on_tenant):
        got = [async_to_sync(layer.receive)(channel) for _ in stored]
        assert [(m["sequence"], m["event"]) for m in got] == stored


def test_other_tenant_events_do_not_reach_our_tenant_group(call, other_tenant, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    ours = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"tenant.{call.tenant_id}", ours)
    theirs = factories.CallFactory(tenant=other_tenant)
    with django_capture_on_commit_callbacks(execute=True):
        services.call_transition(call=theirs, to_status=CallStatus.RINGING)
        services.call_transition(call=call, to_status=CallStatus.RINGING)
    message = async_to_sync(layer.receive)(ours)
    assert message["data"]["call_id"] == str(call.pk)
