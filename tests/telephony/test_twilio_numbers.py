"""Importing a tenant's Twilio numbers through the API: the real SDK lists them at the fake Twilio."""

import pytest

from integrations import services as credential_services
from telephony.models import PhoneNumber
from tests import factories
from tests.api.conftest import key_client
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.django_db

BASE = "https://voice.example.com"


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_WEBHOOK_BASE_URL = BASE
    yield fake
    fake.stop()


@pytest.fixture
def tenant(fake_twilio):
    tenant = factories.TenantFactory(name="Acme Dental")
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)
    return tenant


def numbers_of(tenant) -> list[tuple]:
    rows = PhoneNumber.objects.for_tenant(tenant).order_by("e164")
    return list(rows.values_list("e164", "provider", "external_id", "friendly_name", "agent_id"))


def test_the_accounts_numbers_are_imported_as_twilio_numbers(tenant, fake_twilio):
    first, second = fake_twilio.add_number("+15550001111", "Main line"), fake_twilio.add_number("+15550002222")
    response = key_client(tenant, scopes=["admin"]).post("/v1/numbers/import-twilio", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"imported": ["+15550001111", "+15550002222"], "skipped": {}, "pointed": []}
    assert numbers_of(tenant) == [
        ("+15550001111", "twilio", first["sid"], "Main line", None),
        ("+15550002222", "twilio", second["sid"], "+15550002222", None),
    ]
    assert [number["voice_url"] for number in fake_twilio.numbers] == ["", ""]  # untouched unless asked


def test_importing_again_skips_what_is_there_and_can_point_the_webhooks_at_us(tenant, fake_twilio):
    fake_twilio.add_number("+15550001111")
    client = key_client(tenant, scopes=["admin"])
    client.post("/v1/numbers/import-twilio", {}, format="json")
    response = client.post("/v1/numbers/import-twilio", {"point_webhooks": True}, format="json")
    assert response.json() == {
        "imported": [],
        "skipped": {"+15550001111": "already one of this tenant's numbers"},
        "pointed": ["+15550001111"],
    }
    [number] = fake_twilio.numbers
    assert (number["voice_url"], number["status_callback"]) == (
        f"{BASE}/carriers/twilio/voice",
        f"{BASE}/carriers/twilio/status",
    )
    [update] = [r for r in fake_twilio.requests if r.method == "POST"]
    assert (update.form["VoiceMethod"], update.form["StatusCallbackMethod"]) == ("POST", "POST")


def test_a_number_another_tenant_has_is_skipped_without_saying_whose(tenant, fake_twilio):
    factories.PhoneNumberFactory(e164="+15550001111")  # another tenant's
    fake_twilio.add_number("+15550001111")
    response = key_client(tenant, scopes=["admin"]).post("/v1/numbers/import-twilio", {}, format="json")
    assert response.json()["skipped"] == {
        "+15550001111": "This number (or provider id) is already registered on the platform."
    }
    assert numbers_of(tenant) == []


def test_without_a_twilio_credential_the_import_is_a_409(fake_twilio):
    other = factories.TenantFactory()
    response = key_client(other, scopes=["admin"]).post("/v1/numbers/import-twilio", {}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "twilio_not_connected")
    assert fake_twilio.requests == []


def test_a_credential_twilio_no_longer_accepts_is_a_502_naming_twilios_answer(tenant, fake_twilio):
    fake_twilio.auth_token = "1" * 32  # rotated at Twilio
    response = key_client(tenant, scopes=["admin"]).post("/v1/numbers/import-twilio", {}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "twilio_20003"
    assert AUTH_TOKEN not in response.content.decode()


def test_importing_needs_an_admin_key(tenant, fake_twilio):
    fake_twilio.add_number("+15550001111")
    response = key_client(tenant, scopes=["read", "write"]).post("/v1/numbers/import-twilio", {}, format="json")
    assert response.status_code == 403
    assert numbers_of(tenant) == [] and fake_twilio.requests == []


def test_a_number_this_tenant_has_on_another_carrier_is_neither_changed_nor_pointed_at_twilio(tenant, fake_twilio):
    factories.PhoneNumberFactory(tenant=tenant, e164="+15550001111", provider=PhoneNumber.Provider.GOTOCONNECT)
    fake_twilio.add_number("+15550001111")
    response = key_client(tenant, scopes=["admin"]).post(
        "/v1/numbers/import-twilio", {"point_webhooks": True}, format="json"
    )
    assert response.json() == {
        "imported": [],
        "skipped": {"+15550001111": "one of this tenant's gotoconnect numbers, left as it is"},
        "pointed": [],
    }
    [number] = fake_twilio.numbers
    assert number["voice_url"] == ""  # its calls were not sent to a webhook that would reject them
    assert [row[1] for row in numbers_of(tenant)] == ["gotoconnect"]
