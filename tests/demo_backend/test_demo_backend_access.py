"""Who the demo backend answers: only while DEBUG is on and the demo is seeded, only for calls of the demo tenant
in progress (X-Call-Id); anything else is refused in JSON and changes nothing."""

import json
import uuid

import pytest

from tests import factories
from tests.demo_backend.conftest import ask
from voiceapp.demo_backend.models import DemoBooking

BOOKING = {"date": "2030-01-08", "time": "15:00", "name": "Ana Silva"}
NOT_A_CALL = {
    "error": {
        "type": "permission_error",
        "code": "not_a_platform_call",
        "message": "This backend answers the demo's calls only.",
        "fields": {},
    }
}


def no_bookings(tenant) -> bool:
    return not DemoBooking.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Call-Id": "not-a-uuid"},
        {"X-Call-Id": str(uuid.uuid4())},  # no call at all
    ],
    ids=["missing", "malformed", "unknown"],
)
def test_a_request_without_a_call_of_the_demo_is_a_403_and_books_nothing(client, demo, headers, caplog):
    response = ask(client, "book_appointment", headers=headers, **BOOKING)

    assert response.status_code == 403
    assert response.json() == NOT_A_CALL
    assert no_bookings(demo.tenant)
    assert "demo backend: /demo-backend/book_appointment refused" in caplog.text


def test_an_ended_call_can_no_longer_book(client, demo):
    demo.status, demo.ended_at, demo.duration_seconds = "ended", demo.started_at, 0
    demo.save(update_fields=["status", "ended_at", "duration_seconds"])

    response = ask(client, "book_appointment", demo, **BOOKING)

    assert (response.status_code, response.json()) == (403, NOT_A_CALL)
    assert no_bookings(demo.tenant)


def test_another_tenants_agent_pointed_at_the_demo_backend_is_refused(client, demo, other_tenant):
    tool = {"name": "book_appointment", "webhook_url": "http://127.0.0.1:8000/demo-backend/book_appointment"}
    their_agent = factories.AgentFactory(
        tenant=other_tenant, tools=[{**tool, "description": "Book", "parameters": {"type": "object"}}]
    )
    their_call = factories.CallFactory(tenant=other_tenant, agent=their_agent, status="conversing")

    response = ask(client, "book_appointment", their_call, **BOOKING)

    assert (response.status_code, response.json()) == (403, NOT_A_CALL)
    assert no_bookings(demo.tenant)
    assert not DemoBooking.objects.for_tenant(other_tenant).exists()


def test_nothing_is_served_with_debug_off(client, demo, settings):
    settings.DEBUG = False

    for path in ("/demo-backend/", "/demo-backend/check_availability"):
        response = client.post(
            path, data=json.dumps(BOOKING), content_type="application/json", headers={"X-Call-Id": str(demo.pk)}
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
    assert no_bookings(demo.tenant)


def test_nothing_is_served_before_the_demo_is_seeded(client, settings, tenant):
    settings.DEBUG = True
    call = factories.CallFactory(tenant=tenant, status="conversing")

    response = ask(client, "check_availability", call, date="2030-01-08")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "message": "No such URL: /demo-backend/check_availability",
        "fields": {},
    }


def test_a_deleted_demo_tenant_is_not_served(client, demo):
    demo.tenant.deleted_at = demo.started_at
    demo.tenant.save(update_fields=["deleted_at"])

    assert ask(client, "check_availability", demo, date="2030-01-08").status_code == 404


@pytest.mark.parametrize("path", ["/demo-backend/send_invoice", "/demo-backend/tools/check_availability"])
def test_an_unknown_tool_is_a_json_404(client, demo, path):
    response = client.post(path, data="{}", content_type="application/json", headers={"X-Call-Id": str(demo.pk)})

    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"No such URL: {path}"


def test_a_body_that_is_not_a_json_object_is_a_400(client, demo):
    for body in ("[1, 2]", "{not json", '"2030-01-08"'):
        response = client.post(
            "/demo-backend/book_appointment",
            data=body,
            content_type="application/json",
            headers={"X-Call-Id": str(demo.pk)},
        )
        assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed_request")
    assert no_bookings(demo.tenant)


def test_other_methods_are_a_405(client, demo):
    response = client.put("/demo-backend/book_appointment", data="{}", headers={"X-Call-Id": str(demo.pk)})

    assert response.status_code == 405
    assert response["Allow"] == "POST, GET"
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_get_tool_sends_its_arguments_in_the_query(client, demo):
    response = client.get(
        "/demo-backend/check_availability", {"date": "2030-01-12"}, headers={"X-Call-Id": str(demo.pk)}
    )

    assert response.status_code == 200
    assert response.json()["available_slots"][0] == "09:00"


def test_the_index_says_what_the_demo_backend_is(client, demo):
    answer = client.get("/demo-backend/").json()

    assert answer["demo"] is True
    assert answer["tools"] == ["book_appointment", "cancel_appointment", "check_availability", "reschedule_appointment"]
