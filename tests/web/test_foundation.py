"""Signing in and out, password reset, switching tenant, the overview, and what every page shares."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from calls.state_machine import CallStatus
from tenants.api.authentication import SESSION_TENANT_KEY
from tenants.models import Membership, Tenant
from tests import factories
from voiceapp.web.context_processors import NAVIGATION

PASSWORD = "a-long-enough-password-42"


@pytest.fixture
def alice(tenant):
    user = factories.UserFactory(username="alice", email="alice@example.com")
    user.set_password(PASSWORD)
    user.save()
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return user


# --- sign in, sign out, password reset ------------------------------------------------------------


def test_signing_in_lands_on_the_overview(client, alice, tenant):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert response.status_code == 200
    assert "<title>Overview · Voice by aiConnected</title>" in response.content.decode()
    assert client.session[SESSION_TENANT_KEY] == str(tenant.pk)


def test_a_wrong_password_is_an_inline_error(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_returns_to_the_page_asked_for(client, alice):
    response = client.post(
        "/accounts/login/?next=/live/", {"username": "alice", "password": PASSWORD, "next": "/live/"}
    )
    assert response.status_code == 302 and response["Location"] == "/live/"


def test_signing_out_takes_a_post(web_client):
    assert web_client.get("/accounts/logout/").status_code == 405
    response = web_client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert web_client.get("/").status_code == 302


def test_password_reset_by_email(client, alice):
    response = client.post("/accounts/password-reset/", {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Reset your Voice by aiConnected password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    new = "another-long-password-43"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    alice.refresh_from_db()
    assert alice.check_password(new)


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, alice):
    response = client.post("/accounts/password-reset/", {"email": "mallory@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []


def test_an_expired_reset_link_says_so(client, alice):
    response = client.get("/accounts/reset/MQ/not-a-token/")
    assert response.status_code == 200
    assert "This link has expired" in response.content.decode()


# --- tenants ----------------------------------------------------------------------------------------


@pytest.fixture
def two_tenant_user(tenant, other_tenant):
    user = factories.UserFactory(username="dana")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.OWNER)
    factories.MembershipFactory(tenant=other_tenant, user=user, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    return client


def test_a_user_in_several_tenants_switches_between_them(two_tenant_user, tenant, other_tenant):
    first = two_tenant_user.get("/").content.decode()
    assert "Acme Dental" in first and 'name="tenant"' in first  # the switcher lists both
    assert '<option value="globex-clinic">Globex Clinic</option>' in first
    response = two_tenant_user.post("/tenant/switch", {"tenant": "globex-clinic", "next": "/live/"})
    assert response.status_code == 302 and response["Location"] == "/live/"
    assert two_tenant_user.session[SESSION_TENANT_KEY] == str(other_tenant.pk)
    page = two_tenant_user.get("/").content.decode()
    assert "<h1>Globex Clinic</h1>" in page
    assert "(viewer)" in page  # the role follows the tenant
    # The REST API with the same session acts in the tenant the dashboard shows.
    api = two_tenant_user.get("/v1/agents")
    assert api.status_code == 200


def test_switching_to_a_tenant_you_are_not_in_is_not_found(web_client, tenant, other_tenant):
    web_client.get("/")
    response = web_client.post("/tenant/switch", {"tenant": "globex-clinic"})
    assert response.status_code == 404
    assert web_client.session[SESSION_TENANT_KEY] == str(tenant.pk)


def test_switching_never_redirects_off_site(two_tenant_user):
    response = two_tenant_user.post("/tenant/switch", {"tenant": "globex-clinic", "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_user_with_no_tenant_is_told_so(client, db):
    user = factories.UserFactory(username="nobody")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert "No tenant yet" in response.content.decode()


def test_a_suspended_tenant_shows_its_state(web_client, tenant):
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    response = web_client.get("/")
    assert response.status_code == 403
    assert "Acme Dental is suspended" in response.content.decode()


# --- overview and the shared layout ----------------------------------------------------------------


def test_the_overview_counts_only_our_calls(web_client, tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Receptionist")
    factories.CallFactory(tenant=tenant, agent=agent, status=CallStatus.CONVERSING, from_number="+15550100061")
    factories.CallFactory(tenant=other_tenant, status=CallStatus.CONVERSING, from_number="+15550100099")
    page = web_client.get("/").content.decode()
    assert '<strong data-testid="active-calls">1</strong>' in page
    assert "+15550100061" in page and "+15550100099" not in page


def test_an_empty_tenant_is_invited_to_create_an_agent(web_client):
    page = web_client.get("/").content.decode()
    assert "Create your first agent" in page


def test_every_navigation_entry_is_a_page(web_client):
    for _section, label, url_name in NAVIGATION:
        response = web_client.get(reverse(url_name))
        assert response.status_code == 200, (url_name, response.status_code)
        html = response.content.decode()
        assert f"{label}</a>" in html
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert re.search(r"<title>[^<]+ · Voice by aiConnected</title>", html)


def test_an_unknown_dashboard_url_is_an_html_404(web_client):
    response = web_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()
