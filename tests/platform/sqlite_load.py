"""Processes for the embedded-SQLite concurrency test, run as `python -m tests.platform.sqlite_load <role>`.

Each role is a separate process on the same SQLite file, as `make run` starts them side by side:

- `setup <receiver url>`: the demo (seed_demo) plus a webhook endpoint for every event, pointing at the test's
  receiver; prints the demo API key and the agent's id as JSON.
- `api <api key> <agent id> <count> <stop file>`: the REST API in process (Django's test client, the whole
  middleware stack): outbound calls and list reads, at least `count` of each and on until `stop file` exists;
  prints every status code as JSON.
- `report`: what the database holds at the end: deliveries (status, attempts), calls (status, processed).
"""

import json
import os
import sys


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    import django

    django.setup()


def setup(receiver_url: str) -> dict:
    from django.core.management import call_command

    from agents.models import Agent
    from integrations.webhooks.services import webhook_endpoint_create
    from tenants.models import Tenant
    from tenants.services import api_key_create

    call_command("seed_demo", verbosity=0)
    tenant = Tenant.objects.get(slug="demo-dental")
    webhook_endpoint_create(tenant=tenant, url=receiver_url, event_types=["*"])
    key = api_key_create(tenant=tenant, name="load", scopes=["read", "write", "admin"])
    agent = Agent.objects.for_tenant(tenant).get(name="Appointment Scheduler")
    return {"key": key.secret, "agent_id": str(agent.pk)}


def api(key: str, agent_id: str, count: int, stop_file: str) -> dict:
    from django.test import Client

    client = Client(HTTP_X_API_KEY=key, HTTP_HOST="127.0.0.1")
    statuses: dict[str, list[int]] = {"create": [], "list": []}
    errors = []
    index = 0
    while index < count or not os.path.exists(stop_file):
        index += 1
        body = {"agent_id": agent_id, "to": f"+1555020{index:04d}"}
        response = client.post("/v1/calls", body, content_type="application/json")
        statuses["create"].append(response.status_code)
        if response.status_code >= 500:
            errors.append(response.content.decode(errors="replace")[:500])
        statuses["list"].append(client.get("/v1/calls?limit=5").status_code)
    return {"statuses": statuses, "errors": errors}


def report() -> dict:
    from calls.models import Call
    from integrations.models import WebhookDelivery

    deliveries = WebhookDelivery.objects.dangerously_unscoped().values("message_id", "status", "attempts", "event_type")
    calls = Call.objects.dangerously_unscoped().values("status", "processed_at", "direction")
    return {
        "deliveries": [{**row, "message_id": str(row["message_id"])} for row in deliveries],
        "calls": [{**row, "processed": row.pop("processed_at") is not None} for row in calls],
    }


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    _django()
    if role == "setup":
        result = setup(*args)
    elif role == "api":
        result = api(args[0], args[1], int(args[2]), args[3])
    else:
        result = report()
    print("RESULT " + json.dumps(result, default=str))
