"""The concurrent-call limit: active calls counted in the tenant's set (Redis, or the local cache), the database the truth."""

import pytest
from django.core.cache import cache

from calls import concurrency, policies
from calls.models import Call
from calls.services import call_create, call_start_outbound, call_transition
from core.errors import ApplicationError
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant):
    factories.SubscriptionFactory(tenant=tenant, plan=factories.PlanFactory(max_concurrent_calls=2))
    agent = factories.AgentFactory(tenant=tenant)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    return agent


def start(tenant, agent):
    return call_start_outbound(tenant=tenant, agent=agent, to_number="+15557654321")


def members(tenant) -> set[str]:
    if concurrency.settings.REDIS_URL:
        client = concurrency._client(concurrency.settings.REDIS_URL)
        return {m.decode() for m in client.smembers(concurrency.key_for(tenant.pk))}
    return set(cache.get(concurrency.key_for(tenant.pk)) or ())


def test_calls_count_from_start_until_they_end(tenant, agent, django_capture_on_commit_callbacks):
    first, second = start(tenant, agent), start(tenant, agent)
    assert members(tenant) == {str(first.pk), str(second.pk)}

    with pytest.raises(ApplicationError) as refused:
        start(tenant, agent)
    assert (refused.value.code, refused.value.status_code) == ("concurrent_call_limit_reached", 429)

    with django_capture_on_commit_callbacks(execute=True):
        call_transition(call=first, to_status="ended", end_reason="error")
    assert members(tenant) == {str(second.pk)}
    third = start(tenant, agent)
    assert members(tenant) == {str(second.pk), str(third.pk)}


def test_inbound_calls_count_too(tenant, agent):
    call_create(tenant=tenant, agent=agent, direction="inbound")
    call_create(tenant=tenant, agent=agent, direction="inbound")
    with pytest.raises(ApplicationError, match="2 active calls"):
        start(tenant, agent)


def test_ids_left_by_a_crashed_process_never_block_calls(tenant, agent):
    start(tenant, agent)
    concurrency.active_calls_remove(tenant_id=tenant.pk, call_id="ghost")  # no-op for an unknown id
    for ghost in ("ghost-1", "ghost-2"):  # a process died before releasing them
        concurrency.active_calls_add(tenant_id=tenant.pk, call_id=ghost)

    call = start(tenant, agent)

    assert members(tenant) == {str(c.pk) for c in Call.objects.dangerously_unscoped().all()} and str(
        call.pk
    ) in members(tenant)


def test_a_missing_set_is_rebuilt_from_the_database(tenant, agent):
    factories.CallFactory(tenant=tenant, agent=agent, status="conversing")
    factories.CallFactory(tenant=tenant, agent=agent, status="initial")
    cache.clear()  # Redis flushed, or a new local cache

    assert concurrency.active_calls_count(tenant_id=tenant.pk) == 2
    with pytest.raises(ApplicationError, match="2 active calls"):
        start(tenant, agent)


def test_redis_down_falls_back_to_the_database(tenant, agent, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    factories.CallFactory(tenant=tenant, agent=agent, status="conversing")
    assert concurrency.active_calls_count(tenant_id=tenant.pk) == 1
    start(tenant, agent)
    assert concurrency.active_calls_at_limit(tenant_id=tenant.pk, limit=2) == 2


def test_without_billing_a_tenant_has_no_concurrent_call_limit(tenant, agent, monkeypatch):
    monkeypatch.setattr(policies, "_admission", None)  # no billing hook: Admission(True, None), no limit
    calls = [start(tenant, agent) for _ in range(3)]
    assert members(tenant) == {str(call.pk) for call in calls}


def test_each_tenant_has_its_own_set(tenant, other_tenant, agent):
    start(tenant, agent)
    assert concurrency.active_calls_count(tenant_id=other_tenant.pk) == 0
