"""The demo tenant as seed_demo leaves it (a tenant with slug demo-dental and an agent), a call of its agent in
progress, DEBUG on, and the demo practice's clock stopped at Monday 7 January 2030, 10:00."""

import json
from datetime import datetime

import pytest
from django.utils import timezone

from tests import factories
from voiceapp.demo_backend import views

NOW = datetime(2030, 1, 7, 10, 0, tzinfo=timezone.get_default_timezone())  # a Monday


@pytest.fixture
def demo(db, settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.setattr(views, "now", lambda: NOW)
    tenant = factories.TenantFactory(name="Demo Dental", slug="demo-dental")
    agent = factories.AgentFactory(tenant=tenant, name="Appointment Scheduler")
    return factories.CallFactory(tenant=tenant, agent=agent, status="conversing")


def ask(client, tool: str, call=None, *, headers: dict | None = None, **arguments):
    """POST a tool call as the platform's gateway sends it (X-Call-Id names the call)."""
    sent = dict(headers or {})
    if call is not None:
        sent.setdefault("X-Call-Id", str(call.pk))
    return client.post(
        f"/demo-backend/{tool}", data=json.dumps(arguments), content_type="application/json", headers=sent
    )
