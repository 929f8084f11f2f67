"""Per-tenant rate limits from the plan: headers, 429 with Retry-After, shared by concurrent clients."""

import threading

import httpx
import pytest

from tenants.api import ratelimit
from tests import factories
from tests.api.conftest import key_client

NOW = 1_800_000_010.0  # 10 s into a one-minute window


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr("tenants.api.ratelimit.time.time", lambda: NOW)


def limited(tenant, per_minute: int, burst: int = 20):
    plan = factories.PlanFactory(api_rate_limit_per_minute=per_minute, api_burst_limit=burst)
    factories.SubscriptionFactory(tenant=tenant, plan=plan)


@pytest.mark.django_db
def test_responses_carry_the_limit_headers(api_client, tenant):
    limited(tenant, 5)
    response = api_client.get("/v1/agents")
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"], response["X-RateLimit-Reset"]) == (
        "5",
        "4",
        "1800000060",
    )


@pytest.mark.django_db
def test_over_the_limit_is_a_429_with_retry_after(api_client, other_api_client, tenant):
    limited(tenant, 3)
    statuses = [api_client.get("/v1/agents").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = api_client.get("/v1/agents")
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.json()["error"]["code"] == "rate_limited"
    assert (response["Retry-After"], response["X-RateLimit-Remaining"]) == ("50", "0")
    assert other_api_client.get("/v1/agents").status_code == 200  # another tenant has its own budget


@pytest.mark.django_db
def test_writes_refused_by_the_limit_change_nothing(api_client, tenant):
    limited(tenant, 1)
    api_client.get("/v1/agents")
    response = api_client.post("/v1/agents", {"name": "A", "system_prompt": "x"}, format="json")
    assert response.status_code == 429
    from agents.models import Agent

    assert not Agent.objects.dangerously_unscoped().exists()


@pytest.mark.django_db
def test_the_concurrent_request_limit(api_client, tenant):
    limited(tenant, 100, burst=2)
    # Two requests of this tenant are in flight elsewhere.
    assert ratelimit.inflight_enter(tenant, 2) and ratelimit.inflight_enter(tenant, 2)
    response = api_client.get("/v1/agents")
    assert (response.status_code, response.json()["error"]["code"]) == (429, "too_many_concurrent_requests")
    ratelimit.inflight_exit(tenant)
    assert api_client.get("/v1/agents").status_code == 200
    # The slot that request took was given back: exactly one more is free.
    assert ratelimit.inflight_enter(tenant, 2)
    assert not ratelimit.inflight_enter(tenant, 2)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_clients_do_not_exceed_the_limit_together(live_server, tenant):
    limited(tenant, 30)
    keys = [key_client(tenant)._credentials["HTTP_X_API_KEY"] for _ in range(2)]
    results: list[int] = []
    lock = threading.Lock()

    def hammer(api_key: str) -> None:
        with httpx.Client(base_url=live_server.url, headers={"X-API-Key": api_key}, timeout=10) as session:
            for _ in range(25):
                status = session.get("/v1/agents").status_code
                with lock:
                    results.append(status)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in keys for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 100
    assert results.count(200) == 30
    assert results.count(429) == 70
