"""Item 14: the tenant's members: add by email (an invitation for someone new), change roles, remove."""

import re

import pytest
from django.contrib.auth import authenticate
from django.core import mail
from django.test import Client

from tenants.models import AuditLog, Membership, User
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/members/"


def change_url(membership) -> str:
    return f"/members/{membership.pk}/"


def roles(tenant) -> dict[str, str]:
    return dict(Membership.objects.for_tenant(tenant).values_list("user__username", "role"))


@pytest.fixture
def admin_client(tenant):
    user = factories.UserFactory(username="adele")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def test_adding_someone_with_an_account_makes_them_a_member(web_client, tenant, owner):
    factories.UserFactory(username="bruno", email="Bruno@Example.com")

    with_callbacks = web_client.post(URL, {"email": "bruno@example.com", "role": "viewer"}, follow=True)

    assert roles(tenant) == {"alice": "owner", "bruno": "viewer"}
    assert "bruno (Bruno@Example.com) is now a viewer here." in with_callbacks.content.decode()
    assert mail.outbox == []
    audit = AuditLog.objects.for_tenant(tenant).get(action="membership.create")
    assert (audit.actor_user, audit.changes["role"], audit.changes["invited"]) == (owner, "viewer", False)


def test_someone_new_gets_an_account_and_an_invitation_to_choose_a_password(
    web_client, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = web_client.post(URL, {"email": "dora@example.com", "role": "member"})

    assert response.status_code == 302
    dora = User.objects.get(email="dora@example.com")
    assert (dora.username, dora.has_usable_password()) == ("dora@example.com", False)
    assert roles(tenant)["dora@example.com"] == "member"
    [invitation] = mail.outbox
    assert invitation.to == ["dora@example.com"]
    assert invitation.subject == "You are invited to Acme Dental on Voice by aiConnected"
    assert "alice added you to Acme Dental" in invitation.body
    link = re.search(r"http://testserver(/accounts/reset/\S+)", invitation.body).group(1)

    # The link is Django's password reset: dora chooses a password and can sign in.
    visitor = Client()
    form_page = visitor.get(link, follow=True)
    assert form_page.status_code == 200
    done = visitor.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a long new password 42", "new_password2": "a long new password 42"},
    )
    assert done.status_code == 302
    assert authenticate(username="dora@example.com", password="a long new password 42") == dora


def test_no_invitation_leaves_before_the_member_is_saved(web_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        web_client.post(URL, {"email": "dora@example.com", "role": "member"})

    assert mail.outbox == [] and len(callbacks) == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "not an email", "role": "member"}, "email", "Enter a valid email address."),
        (
            {"email": "x@example.com", "role": "god"},
            "role",
            "Select a valid choice. god is not one of the available choices.",
        ),
        ({"email": "ALICE@example.com", "role": "viewer"}, "email", "Already a member: change their role below."),
    ],
)
def test_bad_additions_are_inline(web_client, tenant, data, field, message):
    response = web_client.post(URL, data)

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert roles(tenant) == {"alice": "owner"}


def test_an_admin_cannot_make_an_owner(admin_client, tenant):
    response = admin_client.post(URL, {"email": "eve@example.com", "role": "owner"})

    assert response.status_code == 400
    assert response.context["form"].errors["role"] == ["Only an owner can do this."]
    assert not User.objects.filter(email="eve@example.com").exists()


def test_changing_a_role_is_audited(web_client, tenant):
    bruno = factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(username="bruno"), role="viewer")

    response = web_client.post(change_url(bruno), {f"{bruno.pk}-role": "admin"}, follow=True)

    assert roles(tenant)["bruno"] == "admin"
    assert "bruno is now admin." in response.content.decode()
    audit = AuditLog.objects.for_tenant(tenant).get(action="membership.update")
    assert audit.changes == {"user": "bruno", "role": ["viewer", "admin"]}


def test_the_last_owner_cannot_be_demoted_or_removed(web_client, tenant, owner):
    mine = Membership.objects.for_tenant(tenant).get(user=owner)

    demoted = web_client.post(change_url(mine), {f"{mine.pk}-role": "admin"}, follow=True)
    removed = web_client.post(change_url(mine), {"remove": "1"}, follow=True)

    assert roles(tenant) == {"alice": "owner"}
    assert "This is the tenant&#x27;s last owner: make someone else an owner first." in demoted.content.decode()
    assert "last owner" in removed.content.decode()
    assert (
        not AuditLog.objects.for_tenant(tenant).filter(action__in=["membership.update", "membership.delete"]).exists()
    )


def test_with_a_second_owner_an_owner_can_step_down(web_client, tenant, owner):
    factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(username="olga"), role="owner")
    mine = Membership.objects.for_tenant(tenant).get(user=owner)

    web_client.post(change_url(mine), {f"{mine.pk}-role": "admin"})

    assert roles(tenant) == {"alice": "admin", "olga": "owner"}


def test_an_admin_cannot_demote_or_remove_an_owner(admin_client, tenant, owner):
    factories.MembershipFactory(tenant=tenant, user=factories.UserFactory(username="olga"), role="owner")
    alice = Membership.objects.for_tenant(tenant).get(user=owner)

    admin_client.post(change_url(alice), {f"{alice.pk}-role": "viewer"})
    admin_client.post(change_url(alice), {"remove": "1"})

    assert roles(tenant) == {"alice": "owner", "olga": "owner", "adele": "admin"}


def test_removing_a_member_keeps_their_account(web_client, tenant):
    bruno_user = factories.UserFactory(username="bruno")
    bruno = factories.MembershipFactory(tenant=tenant, user=bruno_user, role="member")

    web_client.post(change_url(bruno), {"remove": "1"})

    assert "bruno" not in roles(tenant)
    assert User.objects.filter(pk=bruno_user.pk).exists()
    assert AuditLog.objects.for_tenant(tenant).get(action="membership.delete").changes == {
        "user": "bruno",
        "role": "member",
    }


def test_members_see_the_list_but_only_admins_change_it(member_client, viewer_client, tenant, owner):
    alice = Membership.objects.for_tenant(tenant).get(user=owner)

    page = member_client.get(URL)

    assert page.status_code == 200 and "alice" in page.content.decode()
    assert 'data-testid="member-add-form"' not in page.content.decode()
    for client in (member_client, viewer_client):
        assert client.post(URL, {"email": "x@example.com", "role": "owner"}).status_code == 403
        assert client.post(change_url(alice), {"remove": "1"}).status_code == 403
    assert roles(tenant)["alice"] == "owner"


def test_another_tenants_member_is_a_404(web_client, other_tenant, other_owner):
    theirs = Membership.objects.for_tenant(other_tenant).get(user=other_owner)

    assert web_client.post(change_url(theirs), {"remove": "1"}).status_code == 404
    assert Membership.objects.for_tenant(other_tenant).filter(pk=theirs.pk).exists()


def test_the_list_shows_only_this_tenants_members(web_client, other_owner):
    html = web_client.get(URL).content.decode()

    assert 'data-member="alice"' in html and 'data-member="bob"' not in html
