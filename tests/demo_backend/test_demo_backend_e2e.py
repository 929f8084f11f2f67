"""The demo's first test call, tool by tool: the demo agent's session calls its tools through the integration
gateway, over HTTP, to the demo backend of the platform served on 127.0.0.1, and says what it answers."""

import json

import pytest
from django.core.management import call_command

from agents.models import Agent
from calls.models import ToolCall
from integrations.models import OutboundRequest
from tenants.models import Tenant
from tests.demo_backend.conftest import NOW
from tests.voice.session_fakes import Reply, last_tool_output, last_user_text
from tests.voice.session_support import Caller, connected_call, fake_models, run
from voiceapp.demo_backend import views
from voiceapp.demo_backend.models import DemoBooking

pytestmark = pytest.mark.slow  # a live server and an agent session


def receptionist(chat_ctx):
    """An LLM that calls the tool the caller asks for and reads back the backend's message."""
    output = last_tool_output(chat_ctx)
    if output is not None:
        return Reply("Sorry, that failed." if output.is_error else json.loads(output.output)["message"])
    said = last_user_text(chat_ctx).lower()
    if "saturday" in said:
        return Reply(tool="check_availability", arguments={"date": "2030-01-12"})
    if "book" in said:
        arguments = {"date": "2030-01-12", "time": "10:00", "name": "Ana Silva", "service": "cleaning"}
        return Reply(tool="book_appointment", arguments=arguments)
    return Reply("Goodbye.")


@pytest.fixture
def demo_call(asgi_server, settings, monkeypatch):
    settings.DEBUG = True
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True  # the embedded default with DEBUG: the server is on 127.0.0.1
    monkeypatch.setattr(views, "now", lambda: NOW)
    call_command("seed_demo", "--base-url", asgi_server.url, verbosity=0)
    agent = Agent.objects.for_tenant(Tenant.objects.get(slug="demo-dental")).get()
    return connected_call(agent)


async def conversation(call, lines):
    caller = Caller()
    await caller.connect(call, fake_models(receptionist, lines))
    await caller.wait_for_agent(1)
    for n, _ in enumerate(lines):
        await caller.say()
        await caller.wait_until(lambda n=n: _tool_answers(caller) > n, timeout=30)
    await caller.hang_up()
    return caller


def _tool_answers(caller) -> int:
    return sum(1 for turn in caller.agent_turns() if (turn.text_content or "").startswith(("On ", "You're", "Sorry")))


def test_the_demo_agent_reads_out_saturdays_slots_and_books_one(demo_call, asgi_server):
    server_url = asgi_server.url
    caller = run(conversation, demo_call, ["What do you have on Saturday?", "Book me in at ten"])

    said = [turn.text_content for turn in caller.agent_turns()]
    assert (
        "On Saturday, January 12 I have 6 open times between 9 AM and 11:30 AM, for example 9 AM, 10 AM, 10:30 AM "
        "or 11:30 AM. What time would suit you?"
    ) in said
    booked = DemoBooking.objects.for_tenant(demo_call.tenant).get()
    assert (booked.name, booked.day.isoformat(), f"{booked.start:%H:%M}", booked.call_id) == (
        "Ana Silva",
        "2030-01-12",
        "10:00",
        demo_call.pk,
    )
    assert (
        "You're booked for a cleaning on Saturday, January 12 at 10 AM, under the name Ana Silva. "
        f"Your reference is {' '.join(booked.reference)}."
    ) in said
    tool_calls = ToolCall.objects.for_tenant(demo_call.tenant).filter(call=demo_call).order_by("started_at")
    assert [(t.tool_name, t.status, t.http_status, t.result["status"]) for t in tool_calls] == [
        ("check_availability", "succeeded", 200, "available"),
        ("book_appointment", "succeeded", 200, "booked"),
    ]
    assert tool_calls[0].result["available_slots"] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    audit = OutboundRequest.objects.for_tenant(demo_call.tenant).order_by("created_at")
    assert [(a.service, a.status_code, a.url) for a in audit] == [
        ("tool-check_availability", 200, f"{server_url}/demo-backend/check_availability"),
        ("tool-book_appointment", 200, f"{server_url}/demo-backend/book_appointment"),
    ]
