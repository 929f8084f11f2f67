"""Item 14: placing an outbound call from the dashboard (calls.services.call_start_outbound)."""

import pytest

from agents.models import Agent
from calls.models import Call
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/calls/new/"
NOT_CONFIGURED = "No phone carrier is configured on this deployment, so the call was not placed"


@pytest.fixture
def agent(tenant):
    factories.SubscriptionFactory(tenant=tenant)  # a plan: calls are allowed
    agent = factories.AgentFactory(tenant=tenant, name="Sales")
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550000100")
    return agent


def test_a_member_places_a_call_and_follows_it_to_its_failure_without_a_carrier(
    member_client, tenant, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(URL, {"agent": agent.pk, "to_number": "+1 555 987-0002", "from_number": ""})

    call = Call.objects.for_tenant(tenant).get()
    assert response.status_code == 302 and response["Location"] == f"/live/{call.pk}/"
    assert (call.direction, call.agent_id, call.from_number, call.to_number) == (
        "outbound",
        agent.pk,
        "+15550000100",
        "+15559870002",
    )
    assert (call.status, call.metadata["failure_reason"]) == ("ended", "telephony_not_configured")
    assert AuditLog.objects.for_tenant(tenant).filter(action="call.start").count() == 1
    live = member_client.get(response["Location"]).content.decode()
    assert "Call to +15559870002" in live
    assert 'data-testid="live-call-outcome" data-tone="failed"' in live and NOT_CONFIGURED in live


def test_the_form_lists_only_our_agents_and_numbers(web_client, agent, other_tenant):
    factories.AgentFactory(tenant=other_tenant, name="Globex agent")
    factories.PhoneNumberFactory(tenant=other_tenant, e164="+15550000999")

    html = web_client.get(f"{URL}?agent={agent.pk}").content.decode()

    assert "Sales" in html and "+15550000100" in html
    assert "Globex agent" not in html and "+15550000999" not in html
    assert f'<option value="{agent.pk}" selected>' in html


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"to_number": "555-0100"}, "to_number", "Enter a phone number in E.164 format"),
        ({"to_number": ""}, "to_number", "This field is required."),
        ({"agent": "00000000-0000-0000-0000-000000000000"}, "agent", "Select a valid choice."),
    ],
)
def test_bad_input_is_inline_and_places_nothing(web_client, agent, data, field, message):
    response = web_client.post(URL, {"agent": agent.pk, "to_number": "+15559870002", **data})

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Call.objects.dangerously_unscoped().exists()


def test_another_tenants_agent_cannot_place_a_call(web_client, agent, other_tenant):
    theirs = factories.AgentFactory(tenant=other_tenant)

    response = web_client.post(URL, {"agent": theirs.pk, "to_number": "+15559870002"})

    assert response.status_code == 400
    assert "agent" in response.context["form"].errors
    assert not Call.objects.dangerously_unscoped().exists()


def test_the_services_refusal_is_shown_on_its_field(web_client, tenant, agent):
    Agent.objects.dangerously_unscoped().filter(pk=agent.pk).update(status=Agent.Status.PAUSED)

    response = web_client.post(URL, {"agent": agent.pk, "to_number": "+15559870002"})

    assert response.status_code == 400
    assert response.context["form"].errors["agent"] == ["The agent is paused."]
    assert not Call.objects.dangerously_unscoped().exists()


def test_without_a_number_to_call_from_the_form_says_so(web_client, tenant):
    factories.SubscriptionFactory(tenant=tenant)
    agent = factories.AgentFactory(tenant=tenant)

    response = web_client.post(URL, {"agent": agent.pk, "to_number": "+15559870002"})

    assert response.status_code == 400
    assert response.context["form"].errors["from_number"] == ["Add a phone number first."]


def test_a_viewer_cannot_place_calls(viewer_client, agent):
    assert viewer_client.get(URL).status_code == 403
    assert viewer_client.post(URL, {"agent": agent.pk, "to_number": "+15559870002"}).status_code == 403
    assert not Call.objects.dangerously_unscoped().exists()


def test_the_calls_list_and_the_agent_page_link_to_the_form(web_client, viewer_client, agent):
    assert 'href="/calls/new/"' in web_client.get("/calls/").content.decode()
    assert f'href="/calls/new/?agent={agent.pk}"' in web_client.get(f"/agents/{agent.pk}/").content.decode()
    assert 'href="/calls/new/"' not in viewer_client.get("/calls/").content.decode()
