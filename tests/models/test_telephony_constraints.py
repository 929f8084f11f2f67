"""Telephony app: phone-number constraints, E.164 validation and clean()."""

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.validators import validate_e164
from telephony.models import GoToConnection, PhoneNumber
from tests import factories
from tests.models.constraints import assert_check_constraint, unique_violation

pytestmark = pytest.mark.django_db

E164_MESSAGE = "Enter a phone number in E.164 format: + then country code and number, digits only (e.g. +15551234567)."

# Invalid numbers that fit the column (max_length=16), so the CHECK constraint, not the length, refuses them.
BAD_E164_FOR_DB = ["5551234567", "+0123", "+1 555 123", "+", "", "+15551234567x"]

CHECK_CASES = [
    *(
        pytest.param(
            "number_e164_format",
            lambda t: factories.PhoneNumberFactory(tenant=t),
            {"e164": bad},
            {"e164": "+442071838750"},
            id=f"number_e164_format-{bad!r}",
        )
        for bad in BAD_E164_FOR_DB
    ),
    pytest.param(
        "number_status_valid",
        lambda t: factories.PhoneNumberFactory(tenant=t),
        {"status": "ported"},
        {"status": "released"},
        id="number_status_valid",
    ),
    pytest.param(
        "goto_connection_status_valid",
        lambda t: factories.GoToConnectionFactory(tenant=t),
        {"status": "paused"},
        {"status": "reconnect_required"},
        id="goto_connection_status_valid",
    ),
]

UNIQUE_CONSTRAINTS_TESTED = {"number_unique_provider_external_id", "goto_connection_one_per_tenant"}


def test_every_constraint_of_the_app_has_a_test():
    models = apps.get_app_config("telephony").get_models()
    declared = {c.name for m in models for c in m._meta.constraints}
    assert declared == {p.values[0] for p in CHECK_CASES} | UNIQUE_CONSTRAINTS_TESTED
    unique_fields = {
        f"{m.__name__}.{f.name}"
        for m in apps.get_app_config("telephony").get_models()
        for f in m._meta.fields
        if f.unique and not f.primary_key
    }
    assert unique_fields == {"PhoneNumber.e164"}  # test_e164_unique_across_tenants


@pytest.mark.parametrize(("constraint", "make", "bad", "good"), CHECK_CASES)
def test_check_constraint(tenant, constraint, make, bad, good):
    assert_check_constraint(tenant, constraint, make, bad, good)


def test_e164_unique_across_tenants(tenant, other_tenant):
    factories.PhoneNumberFactory(tenant=tenant, e164="+15551234567")

    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.create(tenant=other_tenant, e164="+15551234567")

    PhoneNumber.objects.create(tenant=other_tenant, e164="+15551234568")
    assert sorted(PhoneNumber.objects.dangerously_unscoped().values_list("e164", "tenant__slug")) == [
        ("+15551234567", "acme-dental"),
        ("+15551234568", "globex-clinic"),
    ]


def test_provider_external_id_unique_only_when_set(tenant, other_tenant):
    # Many numbers without an external id are fine.
    PhoneNumber.objects.create(tenant=tenant, e164="+15550000001", external_id="")
    PhoneNumber.objects.create(tenant=tenant, e164="+15550000002", external_id="")
    PhoneNumber.objects.create(tenant=other_tenant, e164="+15550000003", external_id="")
    PhoneNumber.objects.create(tenant=tenant, e164="+15550000004", external_id="did-1")

    with unique_violation("number_unique_provider_external_id"), transaction.atomic():
        PhoneNumber.objects.create(tenant=other_tenant, e164="+15550000005", external_id="did-1")

    PhoneNumber.objects.create(tenant=other_tenant, e164="+15550000005", external_id="did-2")
    assert PhoneNumber.objects.dangerously_unscoped().filter(external_id="").count() == 3
    assert sorted(
        PhoneNumber.objects.dangerously_unscoped().exclude(external_id="").values_list("external_id", flat=True)
    ) == [
        "did-1",
        "did-2",
    ]


def test_a_tenant_has_one_goto_connection_and_others_have_their_own(tenant, other_tenant):
    first = factories.GoToConnectionFactory(tenant=tenant)

    with unique_violation("goto_connection_one_per_tenant"), transaction.atomic():
        factories.GoToConnectionFactory(tenant=tenant)

    factories.GoToConnectionFactory(tenant=other_tenant)
    assert GoToConnection.objects.for_tenant(tenant).get() == first
    assert GoToConnection.objects.dangerously_unscoped().count() == 2


# --- E.164 validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["+15551234567", "+442071838750", "+12", "+123456789012345"])
def test_valid_e164(tenant, number):
    validate_e164(number)
    factories.PhoneNumberFactory.build(tenant=tenant, agent=None, e164=number).full_clean()


@pytest.mark.parametrize(
    "number",
    [
        "5551234567",
        "+0123",
        "+1 555 123",
        "+1234567890123456",  # 16 digits
        "+",
        "",
        "+1-555-123-4567",
        pytest.param("+15551234567\n", id="trailing-newline"),
    ],
)
def test_invalid_e164(number):
    with pytest.raises(ValidationError) as exc:
        validate_e164(number)
    assert exc.value.messages == [E164_MESSAGE]
    assert exc.value.code == "invalid_e164"


@pytest.mark.parametrize(
    ("number", "errors"),
    [
        ("5551234567", [E164_MESSAGE]),
        ("+0123", [E164_MESSAGE]),
        ("", ["This field cannot be blank."]),
        (
            "+1234567890123456",
            [E164_MESSAGE, "Ensure this value has at most 16 characters (it has 17)."],
        ),
    ],
)
def test_phone_number_full_clean_refuses_invalid_e164(tenant, number, errors):
    phone = factories.PhoneNumberFactory.build(tenant=tenant, agent=None, e164=number)

    with pytest.raises(ValidationError) as exc:
        phone.full_clean()

    assert exc.value.message_dict == {"e164": errors}


def test_phone_number_clean_refuses_another_tenants_agent(tenant, other_tenant):
    phone = factories.PhoneNumberFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=other_tenant))

    with pytest.raises(ValidationError) as exc:
        phone.full_clean()

    assert exc.value.message_dict == {"agent": ["This agent belongs to another tenant."]}
    factories.PhoneNumberFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=tenant)).full_clean()
