"""A carrier's second leg of a call (a warm-transfer target, a supervisor) is found by its carrier id."""

import pytest
from django.core.cache import cache

from telephony import services
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_registered_consult_leg_resolves_to_its_call_and_tenant(tenant):
    call = factories.CallFactory(tenant=tenant)
    services.consult_leg_register(external_id="leg-1", call_id=call.pk, tenant_id=tenant.pk)
    assert services.external_call_resolve("leg-1") == (str(call.pk), str(tenant.pk), call.status, True)


def test_a_consult_leg_recorded_before_tenants_were_kept_with_it_still_resolves(tenant):
    """A warm transfer running through a deploy: the old entry holds the call id alone."""
    call = factories.CallFactory(tenant=tenant)
    cache.set("pbx:leg:leg-2", str(call.pk), 60)
    assert services.external_call_resolve("leg-2") == (str(call.pk), str(tenant.pk), call.status, True)


def test_an_unknown_carrier_id_resolves_to_nothing():
    assert services.external_call_resolve("nobody") is None
