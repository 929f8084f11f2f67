"""Liveness and readiness probes, with real unreachable dependencies for the failure cases."""

import pytest
from django.test import override_settings

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.mark.django_db
def test_health_answers_without_touching_dependencies(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_ready_reports_every_dependency_ok(client):
    response = client.get("/ready")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "cache", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_ready_names_a_down_cache(client):
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": UNREACHABLE_REDIS}}
    with override_settings(CACHES=caches):
        response = client.get("/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["failing"] == ["cache"]
    assert body["checks"]["cache"]["ok"] is False
    assert "ConnectionError" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_ready_names_a_down_channel_layer(client):
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [UNREACHABLE_REDIS]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        response = client.get("/ready")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["channel_layer"]
    assert body["checks"]["cache"]["ok"] is True


def test_ready_names_a_down_database(client):
    # No `db` fixture: pytest-django refuses every query, so the probe's SELECT 1 fails as on a down database.
    response = client.get("/ready")
    body = response.json()
    assert response.status_code == 503
    assert "database" in body["failing"]


@pytest.mark.django_db
def test_probes_refuse_other_methods_with_405(client):
    assert client.post("/health").status_code == 405
    assert client.post("/ready").status_code == 405


@pytest.mark.django_db
def test_metrics_are_exposed_for_prometheus(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "calls_total" in text
