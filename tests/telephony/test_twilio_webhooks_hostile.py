"""Hostile input on Twilio's webhooks: every refusal is a 4xx in the API's one JSON error shape, never an
HTML page or a 500, and nothing is created."""

import pytest
from django.conf import settings

from calls.models import Call
from tests import factories
from tests.telephony.fake_twilio import new_call_sid, signed_form, voice_params
from tests.telephony.test_twilio_webhooks import (
    CALLER,
    OUR_NUMBER,
    STATUS_URL,
    VOICE_URL,
    calls,
    connect_twilio,
    number,  # noqa: F401 (the fixture)
    ring,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("number")]  # our Twilio number, connected

ROUTES = ("/carriers/twilio/voice", "/carriers/twilio/status", "/carriers/twilio/answer")
FORM = "application/x-www-form-urlencoded"
BODIES = {
    "huge": (("a=" + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)).encode(), FORM, 413, "request_too_large"),
    "too-many-fields": ("&".join(f"a{i}=1" for i in range(2000)).encode(), FORM, 400, "malformed_request"),
    "multipart-without-boundary": (b"--xx\r\nnot a part", "multipart/form-data", 400, "malformed_request"),
}


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    assert set(error) == {"type", "code", "message", "fields"}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", list(BODIES))
def test_an_unreadable_body_is_a_json_4xx(client, route, body):
    data, content_type, status, code = BODIES[body]
    assert_json_error(client.post(route, data=data, content_type=content_type), status, code)
    assert calls() == []


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_another_method_is_a_json_405(client, route, method):
    response = getattr(client, method)(route)
    assert_json_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_an_unknown_carrier_route_is_the_json_404(client):
    assert_json_error(client.post("/carriers/twilio/nope", data={}), 404, "resource_missing")


@pytest.mark.parametrize("field", ["CallSid", "To", "From", "AccountSid"])
@pytest.mark.parametrize("value", ["CA\x00x", "x" * 300])
def test_a_nul_or_overlong_parameter_is_a_400_before_any_lookup(client, field, value):
    params = {**voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER), field: value}
    assert_json_error(ring(client, params), 400, "invalid_request")
    assert calls() == []


def test_a_nul_in_a_status_callback_is_a_400(client):
    params = {"AccountSid": "AC1", "CallSid": "CA\x00", "CallStatus": "completed"}
    assert_json_error(ring(client, params, url=STATUS_URL), 400, "invalid_request")


def test_a_long_sip_caller_is_kept_as_far_as_the_call_keeps_it(client):
    sip = "sip:" + "a" * 60 + "@example.com"
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=sip))
    assert response.status_code == 200
    [call] = calls()
    assert call.from_number == sip[: Call._meta.get_field("from_number").max_length]


def test_a_repeated_parameter_is_checked_over_every_value_as_twilio_signs_it(client):
    params = {**voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER), "SipHeader": ["b", "a"]}
    assert ring(client, params).status_code == 200
    [call] = calls()
    assert call.external_call_id == params["CallSid"]
    forged = {**voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER), "SipHeader": ["a"]}
    form = signed_form(VOICE_URL, forged)
    forged["SipHeader"] = ["a", "c"]  # a value added to what Twilio signed
    response = client.post("/carriers/twilio/voice", forged, headers=form["headers"])
    assert_json_error(response, 403, "invalid_signature")


def test_another_tenants_valid_signature_cannot_end_this_tenants_call(client, number):  # noqa: F811
    """Tenant B signs a status callback for tenant A's CallSid with B's own credential: 403, A's call untouched."""
    call = factories.CallFactory(
        tenant=number.tenant,
        agent=number.agent,
        direction="outbound",
        status="dialing",
        external_call_id=new_call_sid(),
    )
    other = factories.TenantFactory()
    connect_twilio(other, account_sid="AC" + "cd" * 16, auth_token="c" * 32)
    params = {"AccountSid": "AC" + "cd" * 16, "CallSid": call.external_call_id, "CallStatus": "busy"}
    assert_json_error(ring(client, params, url=STATUS_URL, auth_token="c" * 32), 403, "invalid_signature")
    call.refresh_from_db()
    assert call.status == "dialing"


def test_a_credential_that_cannot_be_decrypted_refuses_the_call_with_a_403_not_a_500(client, number):  # noqa: F811
    from integrations.models import ProviderCredential

    credential = ProviderCredential.objects.for_tenant(number.tenant).get(provider="twilio")
    ProviderCredential.objects.for_tenant(number.tenant).filter(pk=credential.pk).update(ciphertext=b"damaged" * 8)
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER))
    assert_json_error(response, 403, "invalid_signature")
    assert calls() == []
