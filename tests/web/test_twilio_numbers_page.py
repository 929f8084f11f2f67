"""The Phone numbers page's Twilio part: the webhook URLs to paste at Twilio, and importing the account's numbers."""

import pytest

from integrations import services as credential_services
from telephony.models import PhoneNumber
from tests import factories
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.django_db

NUMBERS_URL, IMPORT_URL = "/numbers/", "/numbers/twilio/import/"


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_WEBHOOK_BASE_URL = "https://voice.example.com"
    yield fake
    fake.stop()


def connect_twilio(tenant):
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)


def test_a_tenant_without_twilio_sees_no_twilio_part(web_client, tenant):
    factories.PhoneNumberFactory(tenant=tenant)
    assert 'data-testid="twilio-setup"' not in web_client.get(NUMBERS_URL).content.decode()


def test_the_page_shows_the_carrier_and_the_webhook_urls_to_paste_at_twilio(web_client, tenant, fake_twilio):
    connect_twilio(tenant)
    factories.PhoneNumberFactory(tenant=tenant, e164="+15550001111", provider=PhoneNumber.Provider.TWILIO)
    page = web_client.get(NUMBERS_URL).content.decode()
    assert '<code data-testid="twilio-voice-url">https://voice.example.com/carriers/twilio/voice</code>' in page
    assert '<code data-testid="twilio-status-url">https://voice.example.com/carriers/twilio/status</code>' in page
    assert "<td>Twilio</td>" in page
    assert 'data-testid="twilio-import-form"' in page  # the owner may import


def test_without_a_public_origin_the_url_is_the_one_this_page_was_reached_at(web_client, tenant, settings):
    settings.TWILIO_WEBHOOK_BASE_URL = ""
    factories.PhoneNumberFactory(tenant=tenant, provider=PhoneNumber.Provider.TWILIO)
    page = web_client.get(NUMBERS_URL).content.decode()
    assert "http://testserver/carriers/twilio/voice" in page
    assert "an admin adds a <em>Twilio</em> credential" in page and 'data-testid="twilio-import-form"' not in page


def test_an_admin_imports_the_accounts_numbers_and_points_them_here(web_client, tenant, fake_twilio):
    connect_twilio(tenant)
    fake_twilio.add_number("+15550001111", "Main line")
    response = web_client.post(IMPORT_URL, {"point": "1"}, follow=True)
    assert "Imported 1 number(s) from Twilio. 1 now send their calls here." in response.content.decode()
    [number] = PhoneNumber.objects.for_tenant(tenant)
    assert (number.e164, number.provider, number.friendly_name) == ("+15550001111", "twilio", "Main line")
    assert fake_twilio.numbers[0]["voice_url"] == "https://voice.example.com/carriers/twilio/voice"


def test_an_import_without_a_credential_says_so(web_client, tenant, fake_twilio):
    response = web_client.post(IMPORT_URL, follow=True)
    assert "Add a Twilio credential (Account SID and auth token) first." in response.content.decode()
    assert fake_twilio.requests == []


def test_a_member_cannot_import(member_client, tenant, fake_twilio):
    connect_twilio(tenant)
    fake_twilio.add_number("+15550001111")
    assert member_client.post(IMPORT_URL).status_code == 403
    assert PhoneNumber.objects.for_tenant(tenant).count() == 0 and fake_twilio.requests == []


def test_another_tenants_admin_imports_into_their_own_tenant_only(other_web_client, tenant, other_tenant, fake_twilio):
    connect_twilio(tenant)  # only `tenant` has Twilio
    fake_twilio.add_number("+15550001111")
    response = other_web_client.post(IMPORT_URL, follow=True)
    assert "Add a Twilio credential" in response.content.decode()
    assert PhoneNumber.objects.dangerously_unscoped().count() == 0 and fake_twilio.requests == []
