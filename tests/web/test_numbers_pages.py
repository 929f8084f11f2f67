"""The Numbers page: the tenant's numbers and routing each to one of its agents."""

import pytest

from telephony.models import PhoneNumber
from tenants.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

NUMBERS_URL = "/numbers/"


def assign_url(number) -> str:
    return f"/numbers/{number.pk}/assign/"


def test_lists_the_tenants_numbers_with_their_agents(web_client, tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    factories.PhoneNumberFactory(tenant=tenant, e164="+15550000001", friendly_name="Main line", agent=agent)
    factories.PhoneNumberFactory(tenant=tenant, e164="+15550000002", agent=None, status=PhoneNumber.Status.INACTIVE)
    factories.PhoneNumberFactory(tenant=other_tenant, e164="+15559999999", friendly_name="Globex line")

    response = web_client.get(NUMBERS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["page_title"] == "Phone numbers"
    assert [n.e164 for n in response.context["numbers"]] == ["+15550000001", "+15550000002"]
    assert 'data-testid="numbers-table"' in html
    assert html.count('data-testid="number-assign-form"') == 2
    assert "Main line" in html and "Inactive" in html
    assert "+15559999999" not in html and "Globex line" not in html
    assert '<meta name="viewport"' in html


def test_empty_state_explains_how_numbers_get_added(web_client):
    response = web_client.get(NUMBERS_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "No phone numbers yet" in html
    assert "POST /v1/numbers" in html
    assert 'data-testid="numbers-table"' not in html


def test_is_paginated_by_25(web_client, tenant):
    for index in range(27):
        factories.PhoneNumberFactory(tenant=tenant, e164=f"+1555100{index:04d}", agent=None)

    first = web_client.get(NUMBERS_URL)
    second = web_client.get(NUMBERS_URL + "?page=2")

    assert len(first.context["numbers"]) == 25
    assert [n.e164 for n in second.context["numbers"]] == ["+15551000025", "+15551000026"]


def test_viewer_sees_the_agents_but_no_assign_form(viewer_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    factories.PhoneNumberFactory(tenant=tenant, agent=agent)

    response = viewer_client.get(NUMBERS_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Front desk" in html
    assert 'data-testid="number-assign-form"' not in html


def test_member_assigns_a_number_to_an_agent(member_client, tenant):
    number = factories.PhoneNumberFactory(tenant=tenant, e164="+15550000001", agent=None)
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")

    response = member_client.post(assign_url(number), {"agent": str(agent.pk)})

    assert response.status_code == 302
    assert response["Location"] == NUMBERS_URL
    number.refresh_from_db()
    assert number.agent_id == agent.pk
    audit = AuditLog.objects.for_tenant(tenant).get(action="number.update")
    assert (audit.object_id, audit.changes, audit.actor_label) == (str(number.pk), {"agent": str(agent.pk)}, "carol")
    page = member_client.get(NUMBERS_URL)
    assert "+15550000001 is now answered by Front desk." in page.content.decode()


def test_unassigning_keeps_the_page_and_clears_the_agent(web_client, tenant):
    number = factories.PhoneNumberFactory(tenant=tenant, e164="+15550000001")
    for index in range(30):
        factories.PhoneNumberFactory(tenant=tenant, e164=f"+1555200{index:04d}", agent=None)

    response = web_client.post(assign_url(number) + "?page=2", {"agent": ""})

    assert (response.status_code, response["Location"]) == (302, NUMBERS_URL + "?page=2")
    number.refresh_from_db()
    assert number.agent_id is None


def test_another_tenants_agent_is_an_inline_error_and_changes_nothing(web_client, tenant, other_tenant):
    ours = factories.AgentFactory(tenant=tenant)
    number = factories.PhoneNumberFactory(tenant=tenant, agent=ours)
    theirs = factories.AgentFactory(tenant=other_tenant, name="Globex agent")

    response = web_client.post(assign_url(number), {"agent": str(theirs.pk)})

    assert response.status_code == 400
    assert response.context["failed_form"].errors == {"agent": ["Choose one of your agents."]}
    html = response.content.decode()
    assert 'data-testid="numbers-table"' in html
    assert "Choose one of your agents." in html
    assert "Globex agent" not in html
    number.refresh_from_db()
    assert number.agent_id == ours.pk
    assert not AuditLog.objects.dangerously_unscoped().filter(action="number.update").exists()


def test_a_deleted_agent_is_refused(web_client, tenant):
    number = factories.PhoneNumberFactory(tenant=tenant, agent=None)
    gone = factories.AgentFactory(tenant=tenant)
    gone.deleted_at = gone.created_at
    gone.save()

    response = web_client.post(assign_url(number), {"agent": str(gone.pk)})

    assert response.status_code == 400
    number.refresh_from_db()
    assert number.agent_id is None


def test_viewer_cannot_assign(viewer_client, tenant):
    number = factories.PhoneNumberFactory(tenant=tenant, agent=None)
    agent = factories.AgentFactory(tenant=tenant)

    response = viewer_client.post(assign_url(number), {"agent": str(agent.pk)})

    assert response.status_code == 403
    number.refresh_from_db()
    assert number.agent_id is None


def test_another_tenants_number_is_a_404(other_web_client, tenant, other_tenant):
    number = factories.PhoneNumberFactory(tenant=tenant, agent=None)
    their_agent = factories.AgentFactory(tenant=other_tenant)

    response = other_web_client.post(assign_url(number), {"agent": str(their_agent.pk)})

    assert response.status_code == 404
    number.refresh_from_db()
    assert number.agent_id is None


def test_assign_only_takes_posts(web_client, tenant):
    number = factories.PhoneNumberFactory(tenant=tenant)

    assert web_client.get(assign_url(number)).status_code == 405


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(NUMBERS_URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/numbers/"
