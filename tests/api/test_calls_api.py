"""/v1/calls: list with filters, details with the ordered transcript, outbound start, transfer."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Call, CallEvent
from calls.services import call_transition
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(tenant):
    return factories.AgentFactory(tenant=tenant, transfer_targets=[{"name": "Front desk", "destination": "ext:1001"}])


@pytest.fixture
def subscribed(tenant):
    return factories.SubscriptionFactory(tenant=tenant, plan=factories.PlanFactory(max_concurrent_calls=2))


@pytest.fixture
def number(tenant, agent):
    return factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550001111")


def conversing_call(tenant, agent) -> Call:
    call = factories.CallFactory(tenant=tenant, agent=agent)
    for status in ("ringing", "connected", "conversing"):
        call = call_transition(call=call, to_status=status)
    return call


def test_details_have_the_transcript_events_and_tool_calls_in_order(api_client, tenant, agent):
    call = conversing_call(tenant, agent)
    for n in (3, 1, 2):
        factories.TranscriptTurnFactory(call=call, turn_number=n, text=f"turn {n}")
    factories.ToolCallFactory(call=call, tool_name="check_availability", result={"slots": ["9:00"]}, status="succeeded")
    response = api_client.get(f"/v1/calls/{call.pk}")
    data = response.json()
    assert response.status_code == 200
    assert [t["text"] for t in data["transcript"]] == ["turn 1", "turn 2", "turn 3"]
    assert [e["event_type"] for e in data["events"]] == ["call.ringing", "call.connected", "call.status_changed"]
    assert [e["sequence"] for e in data["events"]] == [1, 2, 3]
    assert data["tool_calls"][0]["result"] == {"slots": ["9:00"]}
    assert data["status"] == "conversing"


def test_details_cost_the_same_queries_however_long_the_call(api_client, tenant, agent):
    def queries_for(turns: int) -> int:
        call = conversing_call(tenant, agent)
        for n in range(1, turns + 1):
            factories.TranscriptTurnFactory(call=call, turn_number=n)
        with CaptureQueriesContext(connection) as ctx:
            assert api_client.get(f"/v1/calls/{call.pk}").status_code == 200
        return len(ctx.captured_queries)

    queries_for(1)  # warm-up: the key's last_used_at write and the cached plan limits
    assert queries_for(2) == queries_for(30) == 5  # key, call, turns, events, tool calls


def test_list_filters(api_client, tenant, agent):
    other_agent = factories.AgentFactory(tenant=tenant)
    early = factories.CallFactory(
        tenant=tenant, agent=agent, started_at=datetime(2026, 11, 1, 9, tzinfo=UTC), from_number="+15551110000"
    )
    late = factories.CallFactory(
        tenant=tenant, agent=other_agent, direction="outbound", started_at=datetime(2026, 11, 20, 9, tzinfo=UTC)
    )
    call_transition(call=late, to_status="dialing")

    def ids(query: str) -> list[str]:
        response = api_client.get(f"/v1/calls?{query}")
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert ids("direction=outbound") == [str(late.pk)]
    assert ids("status=dialing") == [str(late.pk)]
    assert sorted(ids("status=dialing&status=initial")) == sorted([str(early.pk), str(late.pk)])
    assert ids(f"agent_id={agent.pk}") == [str(early.pk)]
    assert ids("number=%2B15551110000") == [str(early.pk)]
    assert ids("started_after=2026-11-10T00:00:00Z") == [str(late.pk)]
    assert ids("started_before=2026-11-10T00:00:00Z") == [str(early.pk)]
    assert ids("ordering=started_at") == [str(early.pk), str(late.pk)]
    assert ids("ordering=-started_at") == [str(late.pk), str(early.pk)]


@pytest.mark.parametrize(
    "query", ["status=flying", "direction=sideways", "agent_id=nope", "started_after=yesterday", "ordering=secret"]
)
def test_bad_filters_are_a_400(api_client, query):
    response = api_client.get(f"/v1/calls?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_start_outbound_call_is_accepted_and_dialled_after_commit(
    api_client, tenant, agent, number, subscribed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(
            "/v1/calls",
            {"agent_id": str(agent.pk), "to": "+15557654321", "metadata": {"customer": "Ann"}},
            format="json",
        )
    assert response.status_code == 202
    call = Call.objects.for_tenant(tenant).get()
    assert response.json() == {"call_id": str(call.pk), "status": "initiating"}
    assert callbacks  # the dialling task runs after the commit (eagerly here)
    assert (call.direction, call.from_number, call.to_number, call.phone_number) == (
        "outbound",
        "+15550001111",
        "+15557654321",
        number,
    )
    # No PBX is configured here: the dialling task ends the call at once and says why.
    assert (call.status, call.end_reason, call.metadata) == (
        "ended",
        "error",
        {"customer": "Ann", "failure_reason": "telephony_not_configured"},
    )
    assert list(CallEvent.objects.dangerously_unscoped().filter(call=call).values_list("event_type", flat=True)) == [
        "call.ended"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "+15557654321"}, "agent_id"),
        ({"agent_id": "{agent}", "to": "5557654321"}, "to"),
        ({"agent_id": "{agent}", "to": "+1 555"}, "to"),
        ({"agent_id": "{agent}"}, "to"),
    ],
)
def test_start_validates_agent_and_e164(api_client, agent, number, subscribed, body, field):
    data = {k: v.format(agent=agent.pk) for k, v in body.items()}
    response = api_client.post("/v1/calls", data, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Call.objects.dangerously_unscoped().exists()


def test_start_needs_a_plan_or_credit(api_client, tenant, agent, number):
    response = api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (402, "insufficient_credits")
    factories.CreditBucketFactory(tenant=tenant, seconds_remaining=60, seconds_total=60)
    assert (
        api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json").status_code
        == 202
    )


def test_start_respects_the_concurrent_call_limit(api_client, tenant, agent, number, subscribed):
    conversing_call(tenant, agent)
    conversing_call(tenant, agent)
    response = api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (429, "concurrent_call_limit_reached")
    assert Call.objects.dangerously_unscoped().count() == 2


def test_start_refuses_a_paused_agent_and_a_tenant_without_numbers(api_client, tenant, agent, subscribed):
    response = api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_caller_id")
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)
    agent.status = "paused"
    agent.save()
    response = api_client.post("/v1/calls", {"agent_id": str(agent.pk), "to": "+15557654321"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "agent_paused")
    assert not Call.objects.dangerously_unscoped().exists()


def test_transfer_a_live_call(api_client, tenant, agent):
    call = conversing_call(tenant, agent)
    response = api_client.post(
        f"/v1/calls/{call.pk}/transfer",
        {"type": "warm", "target": "front desk", "context": "Billing question"},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["status"] == "transferring"
    event = CallEvent.objects.dangerously_unscoped().filter(call=call).order_by("-sequence").first()
    assert event.event_type == "call.transfer_requested"
    assert event.payload == {
        "call_id": str(call.pk),
        "type": "warm",
        "transfer_type": "warm",
        "target": "ext:1001",
        "context": "Billing question",
        "reason": "api_request",
    }


def test_transfer_publishes_the_request_on_the_call_group(
    api_client, tenant, agent, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    call = conversing_call(tenant, agent)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"call.{call.pk}", channel)
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(f"/v1/calls/{call.pk}/transfer", {"type": "blind", "target": "+15559998888"}, format="json")
    seen = [async_to_sync(layer.receive)(channel) for _ in range(2)]  # call.status_changed, then the request
    message = seen[-1]
    assert seen[0]["data"]["to_status"] == "transferring"
    assert (message["event"], message["data"]["target"], message["data"]["transfer_type"]) == (
        "call.transfer_requested",
        "+15559998888",
        "blind",
    )


@pytest.mark.parametrize(
    ("body", "field"), [({"type": "cold", "target": "ext:1"}, "type"), ({"type": "blind"}, "target")]
)
def test_transfer_validates_its_body(api_client, tenant, agent, body, field):
    call = conversing_call(tenant, agent)
    response = api_client.post(f"/v1/calls/{call.pk}/transfer", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    call.refresh_from_db()
    assert call.status == "conversing"


def test_transfer_to_an_unknown_target_changes_nothing(api_client, tenant, agent):
    call = conversing_call(tenant, agent)
    response = api_client.post(f"/v1/calls/{call.pk}/transfer", {"type": "blind", "target": "Sales"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_transfer_target")
    call.refresh_from_db()
    assert call.status == "conversing"


@pytest.mark.parametrize("status", ["initial", "ringing", "on_hold", "transferring", "ended"])
def test_transfer_is_refused_unless_the_call_is_conversing(api_client, tenant, agent, status):
    call = factories.CallFactory(tenant=tenant, agent=agent)
    extra = {"ended_at": call.started_at + timedelta(seconds=5), "duration_seconds": 5} if status == "ended" else {}
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(status=status, **extra)
    response = api_client.post(f"/v1/calls/{call.pk}/transfer", {"type": "blind", "target": "ext:1001"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "invalid_call_transition")
    assert Call.objects.dangerously_unscoped().get(pk=call.pk).status == status
    assert not CallEvent.objects.dangerously_unscoped().filter(call=call, event_type="call.transfer_requested").exists()


def test_the_fast_detail_matches_the_serializer_field_for_field(api_client, tenant, agent):
    from rest_framework.renderers import JSONRenderer
    from rest_framework.test import APIRequestFactory

    from calls.apis import CallDetailOutput
    from calls.selectors import call_detail

    call = conversing_call(tenant, agent)
    factories.TranscriptTurnFactory(call=call, turn_number=1, confidence=0.87, metadata={"stt_ms": 120})
    factories.ToolCallFactory(call=call, result={"ok": True}, status="succeeded", duration_ms=42)
    factories.RecordingFactory(call=call)
    Call.objects.dangerously_unscoped().filter(pk=call.pk).update(
        analysis={"summary": "Asked for hours."}, talk_stats={"turns": 1}
    )
    request = APIRequestFactory().get(f"/v1/calls/{call.pk}")
    serialized = CallDetailOutput(call_detail(tenant=tenant, call_id=call.pk), context={"request": request}).data
    assert serialized["recording_url"] == f"http://testserver/v1/calls/{call.pk}/recording"
    assert api_client.get(f"/v1/calls/{call.pk}").content == JSONRenderer().render(serialized)
