"""Dashboard fixtures: signed-in browsers (Django's test client) for each role, ours and another tenant's."""

import pytest
from django.test import Client

from tenants.models import Membership
from tests import factories


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def web_client(owner):
    """The owner of `tenant`, signed in to the dashboard."""
    return signed_in(owner)


@pytest.fixture
def other_owner(other_tenant):
    user = factories.UserFactory(username="bob")
    factories.MembershipFactory(tenant=other_tenant, user=user, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def other_web_client(other_owner):
    """The owner of `other_tenant`, signed in: must never see `tenant`'s data."""
    return signed_in(other_owner)


@pytest.fixture
def member_client(tenant):
    user = factories.UserFactory(username="carol")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.MEMBER)
    return signed_in(user)


@pytest.fixture
def viewer_client(tenant):
    """A read-only member of `tenant`: sees pages, changes nothing."""
    user = factories.UserFactory(username="victor")
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.VIEWER)
    return signed_in(user)
