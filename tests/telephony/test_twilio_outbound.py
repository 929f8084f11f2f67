"""Outbound calls through Twilio: the dialer places the call with the real SDK against the fake Twilio's
REST API; Twilio's answer request (with AnsweredBy) and status callbacks decide what happens next."""

from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest

from calls import carriers
from calls.models import Call
from calls.services import call_initiate
from integrations import services as credential_services
from integrations.models import ProviderCredential
from telephony.carriers.twilio import signature
from telephony.models import PhoneNumber
from tests import factories
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, signed_form

pytestmark = pytest.mark.django_db

OUR_NUMBER, CALLEE = "+15559876543", "+15557654321"
BASE = "https://voice.example.com"


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio().start()
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_WEBHOOK_BASE_URL = BASE
    yield fake
    fake.stop()


@pytest.fixture
def number(fake_twilio):
    tenant = factories.TenantFactory(name="Acme Dental")
    factories.SubscriptionFactory(tenant=tenant)
    secret = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}
    credential_services.credential_create(tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False)
    return factories.PhoneNumberFactory(tenant=tenant, e164=OUR_NUMBER, provider=PhoneNumber.Provider.TWILIO)


def outbound(number, **fields) -> Call:
    fields = {"status": "initial", **fields}
    return factories.CallFactory(
        tenant=number.tenant, agent=number.agent, phone_number=number, direction="outbound",
        from_number=OUR_NUMBER, to_number=CALLEE, **fields,
    )  # fmt: skip


def post(client, url: str, params: dict, auth_token: str = AUTH_TOKEN):
    form = signed_form(url, params, auth_token)
    return client.post(url.removeprefix(BASE), form["data"], headers=form["headers"])


def tags(response) -> list[str]:
    return [element.tag for element in ElementTree.fromstring(response.content)]  # noqa: S314 (our own answer)


def test_a_twilio_number_dials_through_twilio_with_machine_detection_and_callbacks(number, fake_twilio):
    call = outbound(number)
    assert carriers.dialer_for(call).__class__.__name__ == "TwilioDialer"
    call = call_initiate(call=call)
    [sid] = fake_twilio.calls
    assert (call.status, call.external_call_id) == ("dialing", sid)
    form = fake_twilio.calls[sid]["form"]
    assert (form["To"], form["From"], form["MachineDetection"]) == (CALLEE, OUR_NUMBER, "Enable")
    assert form["Url"] == f"{BASE}/carriers/twilio/answer?call={call.pk}&tenant={call.tenant_id}"
    assert form["StatusCallback"] == f"{BASE}/carriers/twilio/status?call={call.pk}&tenant={call.tenant_id}"
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]


def test_a_dial_twilio_refuses_ends_the_call_with_twilios_code(number, fake_twilio):
    fake_twilio.refuse_dial = {"code": 21215, "message": "Account not authorized to call this number", "status": 400}
    call = call_initiate(call=outbound(number))
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == ("ended", "error", "twilio_21215")


def test_a_tenant_without_a_twilio_credential_cannot_dial(number, fake_twilio):
    ProviderCredential.objects.for_tenant(number.tenant).delete()
    call = call_initiate(call=outbound(number))
    call.refresh_from_db()
    assert (call.end_reason, call.metadata["failure_reason"]) == ("error", "twilio_not_connected")
    assert fake_twilio.calls == {}


def test_without_a_public_origin_twilio_cannot_dial(number, fake_twilio, settings):
    settings.TWILIO_WEBHOOK_BASE_URL = ""
    call = call_initiate(call=outbound(number))
    assert (call.status, call.metadata["failure_reason"]) == ("ended", "telephony_not_configured")
    assert fake_twilio.calls == {}


@pytest.mark.parametrize(
    ("twilio_status", "reason"), [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "error")]
)
def test_an_unanswered_dial_ends_as_twilio_reports(client, number, fake_twilio, twilio_status, reason):
    call = call_initiate(call=outbound(number))
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.external_call_id, "CallStatus": twilio_status}
    assert post(client, f"{BASE}/carriers/twilio/status", params).status_code == 204
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", reason)


def answer(client, call, answered_by: str, *, auth_token: str = AUTH_TOKEN):
    url = f"{BASE}/carriers/twilio/answer?call={call.pk}&tenant={call.tenant_id}"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.external_call_id, "CallStatus": "in-progress"}
    return post(client, url, {**params, **({"AnsweredBy": answered_by} if answered_by else {})}, auth_token)


@pytest.mark.parametrize(("answered_by", "amd"), [("human", False), ("unknown", True), ("", True)])
def test_a_picked_up_call_is_bridged_and_our_detector_listens_when_twilio_could_not_tell(
    client, number, fake_twilio, answered_by, amd
):
    call = call_initiate(call=outbound(number))
    response = answer(client, call, answered_by)
    assert tags(response) == ["Connect"]
    stream = ElementTree.fromstring(response.content).find("Connect/Stream")  # noqa: S314
    assert stream.get("url") == "wss://voice.example.com/ws/v1/carriers/twilio/stream"
    claims = signature.stream_claims(stream.find("Parameter").get("value"))
    assert claims == {"call": str(call.pk), "tenant": str(call.tenant_id), "sid": call.external_call_id, "amd": amd}


def test_a_machine_without_a_voicemail_message_is_hung_up_and_the_call_ends_voicemail(client, number, fake_twilio):
    number.agent.voicemail_message = ""
    number.agent.save()
    call = call_initiate(call=outbound(number))
    assert tags(answer(client, call, "machine_start")) == ["Hangup"]
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.metadata["twilio_answered_by"]) == (
        "ended",
        "voicemail",
        "machine_start",
    )


def test_a_machine_gets_the_voicemail_message_after_our_detector_finds_its_tone(client, number, fake_twilio):
    number.agent.voicemail_message = "Hi, this is Acme Dental. Please call us back."
    number.agent.save()
    call = call_initiate(call=outbound(number))
    response = answer(client, call, "machine_start")
    stream = ElementTree.fromstring(response.content).find("Connect/Stream")  # noqa: S314
    assert signature.stream_claims(stream.find("Parameter").get("value"))["amd"] is True


def test_a_forged_answer_request_is_refused_and_changes_nothing(client, number, fake_twilio):
    call = call_initiate(call=outbound(number))
    response = answer(client, call, "human", auth_token="0" * 32)
    assert response.status_code == 403
    call.refresh_from_db()
    assert (call.status, "twilio_answered_by" in call.metadata) == ("dialing", False)


def test_another_tenants_call_cannot_be_answered_with_this_tenants_signature(client, number, fake_twilio):
    other = factories.TenantFactory()
    theirs = factories.CallFactory(
        tenant=other, direction="outbound", status="dialing", external_call_id="CA" + "0" * 32
    )
    url = f"{BASE}/carriers/twilio/answer?call={theirs.pk}&tenant={number.tenant_id}"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": theirs.external_call_id}
    response = post(client, url, params)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "call_not_found")
    theirs.refresh_from_db()
    assert theirs.status == "dialing"


def test_hanging_up_a_dialled_call_goes_through_twilio(number, fake_twilio):
    call = call_initiate(call=outbound(number))
    carriers.dialer_for(call).hang_up(call.external_call_id)
    [update] = fake_twilio.calls[call.external_call_id]["updates"]
    assert update == {"Status": "completed"}


def test_the_answer_url_is_the_one_twilio_fetches(number, fake_twilio):
    call = call_initiate(call=outbound(number))
    url = urlsplit(fake_twilio.calls[call.external_call_id]["form"]["Url"])
    assert parse_qs(url.query) == {"call": [str(call.pk)], "tenant": [str(call.tenant_id)]}


def test_a_dial_twilio_fails_before_its_callsid_was_stored_still_ends_the_call(client, number, fake_twilio):
    """Twilio's status callback can beat the REST answer: the URL names the call, and its CallSid is taken."""
    call = outbound(number, status="dialing")  # dialled; the CallSid not stored yet
    url = f"{BASE}/carriers/twilio/status?call={call.pk}&tenant={call.tenant_id}"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "ab" * 16, "CallStatus": "failed"}
    assert post(client, url, params).status_code == 204
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.external_call_id) == ("ended", "error", "CA" + "ab" * 16)


def test_a_status_callback_naming_a_call_cannot_carry_another_callsid_or_tenant(client, number, fake_twilio):
    call = outbound(number, status="dialing", external_call_id="CA" + "cd" * 16)
    url = f"{BASE}/carriers/twilio/status?call={call.pk}&tenant={call.tenant_id}"
    params = {"AccountSid": ACCOUNT_SID, "CallSid": "CA" + "ef" * 16, "CallStatus": "busy"}  # not this call's
    assert post(client, url, params).status_code == 404
    unknown = outbound(number, status="dialing")  # no CallSid yet
    other = factories.TenantFactory()
    url = f"{BASE}/carriers/twilio/status?call={unknown.pk}&tenant={other.pk}"  # named under another tenant
    assert post(client, url, params).status_code == 404
    unknown.refresh_from_db()
    assert (unknown.status, unknown.external_call_id) == ("dialing", None)
    call.refresh_from_db()
    assert (call.status, call.external_call_id) == ("dialing", "CA" + "cd" * 16)
