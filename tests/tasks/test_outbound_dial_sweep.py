"""Starting a call is as safe as sending a webhook: stored intent, a sweep that re-queues it, dialled once.

A `POST /v1/calls` answered 202 must reach the carrier even when the dial task is lost (the broker is
down when it is queued, or the worker holding it is killed): the call keeps `dial_due_at`, and the
minute sweep (`calls.tasks.dial_due_calls`) queues it again once that lease has passed. The dial
itself moves the call out of `initial` under a row lock before anything reaches the carrier, so a
redelivered task, a second sweep or both together never ring the callee twice.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from calls import carriers, services, tasks
from calls.models import Call, CallEvent
from calls.state_machine import CallStatus
from tests import factories
from voiceapp.schedules import SCHEDULES

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant):
    factories.SubscriptionFactory(tenant=tenant)
    agent = factories.AgentFactory(tenant=tenant)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    return agent


class RecordingDialer:
    """Stands in for a carrier adapter's dialer (calls.carriers.Dialer): records each dial."""

    def __init__(self):
        self.dialled: list[str] = []
        self.hung_up: list[str] = []

    def available(self) -> bool:
        return True

    def dial(self, request: carriers.DialRequest) -> str:
        self.dialled.append(request.call_id)
        return f"carrier-{request.call_id}"

    def hang_up(self, external_call_id: str) -> None:
        self.hung_up.append(external_call_id)


@pytest.fixture
def dialer(monkeypatch):
    dialer = RecordingDialer()
    monkeypatch.setitem(carriers._dialers, "gotoconnect", dialer)
    return dialer


@pytest.fixture
def carrier(dialer):
    return dialer.dialled


@pytest.fixture
def lost_task(monkeypatch):
    """The dial task is queued but never runs (its worker was killed with it in hand)."""
    lost: list[dict] = []
    monkeypatch.setattr(tasks.call_initiate, "delay", lambda **kwargs: lost.append(kwargs))
    return lost


def run_now(**kwargs):
    """The task as a worker runs it (in process)."""
    return tasks.call_initiate.apply(kwargs=kwargs)


def start(tenant, agent, capture) -> Call:
    with capture(execute=True):
        call = services.call_start_outbound(tenant=tenant, agent=agent, to_number="+15557654321")
    return Call.objects.dangerously_unscoped().get(pk=call.pk)


def test_an_accepted_call_stores_when_its_dial_is_due_again(
    tenant, agent, lost_task, django_capture_on_commit_callbacks
):
    before = timezone.now()
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    assert lost_task == [{"call_id": str(call.pk), "tenant_id": str(tenant.pk)}]
    assert call.status == CallStatus.INITIAL
    lease = timedelta(seconds=settings.CALL_DIAL_LEASE_SECONDS)
    assert before + lease <= call.dial_due_at <= timezone.now() + lease


def test_a_call_whose_dial_task_was_lost_is_dialled_by_the_sweep_once_the_lease_has_passed(
    tenant, agent, carrier, lost_task, django_capture_on_commit_callbacks, monkeypatch
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    assert services.calls_claim_due_dials(now=call.dial_due_at - timedelta(seconds=1)) == []  # its task may still run
    assert carrier == []

    monkeypatch.setattr(tasks.call_initiate, "delay", run_now)  # the broker works again
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(dial_due_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dial_due_calls() == 1
    call.refresh_from_db()
    assert carrier == [str(call.pk)]
    assert (call.status, call.dial_due_at) == (CallStatus.DIALING, None)

    assert tasks.dial_due_calls() == 0  # nothing left to sweep
    tasks.call_initiate(call_id=str(call.pk), tenant_id=str(tenant.pk))  # the lost message redelivered at last
    assert carrier == [str(call.pk)]  # dialled once


def test_a_redelivered_dial_task_and_the_sweep_together_dial_once(
    tenant, agent, carrier, django_capture_on_commit_callbacks
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)  # the task ran: dialled
    assert carrier == [str(call.pk)]
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(
        dial_due_at=timezone.now() - timedelta(minutes=1)
    )  # even if it were due
    tasks.call_initiate(call_id=str(call.pk), tenant_id=str(tenant.pk))
    assert tasks.dial_due_calls() == 0
    assert carrier == [str(call.pk)]


def test_a_dial_that_loses_the_race_to_another_task_does_nothing(
    tenant, agent, carrier, lost_task, django_capture_on_commit_callbacks
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    stale = Call.objects.dangerously_unscoped().get(
        pk=call.pk
    )  # a second task read the call while it was still initial ...
    tasks.call_initiate(call_id=str(call.pk), tenant_id=str(tenant.pk))  # ... and the first one dialled
    assert services.call_initiate(call=stale).status == CallStatus.DIALING  # no error, no second dial
    assert carrier == [str(call.pk)]


def test_one_sweep_claims_a_due_call_so_a_second_sweep_does_not_queue_it_again(
    tenant, agent, lost_task, django_capture_on_commit_callbacks
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    later = call.dial_due_at + timedelta(seconds=1)
    assert services.calls_claim_due_dials(now=later) == [(call.pk, tenant.pk)]
    assert services.calls_claim_due_dials(now=later) == []
    call.refresh_from_db()
    assert call.dial_due_at == later + timedelta(seconds=settings.CALL_DIAL_LEASE_SECONDS)


def test_the_api_accepts_a_call_while_the_broker_is_down_and_the_sweep_dials_it_later(
    tenant, agent, api_client, carrier, monkeypatch
):
    def broker_down(**kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.call_initiate, "delay", broker_down)
    response = api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json")
    assert response.status_code == 202, response.content
    call = Call.objects.dangerously_unscoped().get(pk=response.json()["call_id"])
    assert call.status == CallStatus.INITIAL and carrier == []

    monkeypatch.setattr(tasks.call_initiate, "delay", run_now)
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(dial_due_at=timezone.now() - timedelta(seconds=1))
    assert tasks.dial_due_calls() == 1
    assert carrier == [str(call.pk)]


def test_a_call_nobody_dialled_before_the_deadline_ends_with_a_reason_instead_of_ringing_late(
    tenant, agent, carrier, lost_task, django_capture_on_commit_callbacks
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    too_late = timezone.now() - timedelta(seconds=settings.CALL_DIAL_DEADLINE_SECONDS + 1)
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(started_at=too_late, dial_due_at=too_late)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dial_due_calls() == 0
    call.refresh_from_db()
    assert carrier == []
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == ("ended", "setup_timeout", "not_dialled")
    assert CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.ended").exists()


def test_the_sweep_only_touches_this_tenants_call_with_this_tenants_id(
    tenant, other_tenant, agent, lost_task, django_capture_on_commit_callbacks
):
    other_agent = factories.AgentFactory(tenant=other_tenant)
    factories.SubscriptionFactory(tenant=other_tenant)
    factories.PhoneNumberFactory(tenant=other_tenant, agent=other_agent)
    ours = start(tenant, agent, django_capture_on_commit_callbacks)
    theirs = start(other_tenant, other_agent, django_capture_on_commit_callbacks)
    later = max(ours.dial_due_at, theirs.dial_due_at) + timedelta(seconds=1)
    assert sorted(services.calls_claim_due_dials(now=later)) == sorted(
        [(ours.pk, tenant.pk), (theirs.pk, other_tenant.pk)]
    )
    # The task scopes its read by the tenant it is given: another tenant's id finds nothing to dial.
    assert tasks.call_initiate(call_id=str(ours.pk), tenant_id=str(other_tenant.pk)) is None
    ours.refresh_from_db()
    assert ours.status == CallStatus.INITIAL


def test_the_dial_sweep_runs_every_minute_and_the_broker_redelivers_well_within_the_hour():
    [schedule] = [s for s in SCHEDULES if s.task == "calls.tasks.dial_due_calls"]
    assert schedule.cron == "* * * * *"
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert settings.CELERY_TASK_TIME_LIMIT < visibility < 3600
    for task in (tasks.call_initiate, tasks.dial_due_calls, tasks.process_transcript):
        assert task.acks_late and task.reject_on_worker_lost


def test_a_dial_sent_late_gets_its_whole_setup_time_before_the_stuck_sweep_ends_it(
    tenant, agent, dialer, lost_task, django_capture_on_commit_callbacks, settings
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    created = timezone.now() - timedelta(seconds=90)  # the dial task was lost; the sweep dialled it a minute later
    Call.objects.for_tenant(tenant).filter(pk=call.pk).update(started_at=created, dial_due_at=created)
    tasks.call_initiate.apply(kwargs={"call_id": str(call.pk), "tenant_id": str(tenant.pk)})
    assert services.calls_end_stuck() == 0  # still ringing at the callee, within its setup time
    call.refresh_from_db()
    assert call.status == CallStatus.DIALING

    later = call.dialed_at + timedelta(seconds=2 * settings.CALL_SETUP_TIMEOUT_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.calls_end_stuck(now=later) == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "setup_timeout")
    assert dialer.hung_up == [call.external_call_id]  # the callee's phone stops ringing


def test_ending_a_call_that_rings_at_the_callee_cancels_it_and_the_carrier_hangs_up(
    tenant, agent, dialer, django_capture_on_commit_callbacks
):
    call = start(tenant, agent, django_capture_on_commit_callbacks)
    assert call.status == CallStatus.DIALING
    with django_capture_on_commit_callbacks(execute=True):
        services.call_end_request(call=call)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "canceled")
    assert dialer.hung_up == [call.external_call_id]


def test_an_inbound_call_left_initial_by_a_dead_process_is_swept_like_any_open_call(tenant, settings):
    agent = factories.AgentFactory(tenant=tenant)
    old = timezone.now() - timedelta(
        seconds=settings.CALL_SETUP_TIMEOUT_SECONDS + settings.CALL_MAX_DURATION_SECONDS + 5
    )
    call = services.call_create(tenant=tenant, agent=agent, direction="inbound")
    Call.objects.for_tenant(tenant).filter(pk=call.pk).update(started_at=old)
    assert services.calls_end_stuck() == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "max_duration")
