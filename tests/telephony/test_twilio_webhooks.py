"""Twilio's voice webhook and status callbacks: signed requests only, the routing rules, TwiML answers.

Requests are signed the way Twilio signs them (tests/telephony/fake_twilio.py) and posted through
Django's test client; the tenant's Twilio credential is in the vault.
"""

from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest

from calls import services as call_services
from calls.models import Call
from integrations import services as credential_services
from telephony.carriers.twilio import signature
from telephony.models import PhoneNumber
from tests import factories
from tests.telephony.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, new_call_sid, signed_form, voice_params

pytestmark = pytest.mark.django_db

OUR_NUMBER, CALLER = "+15559876543", "+15551234567"
VOICE_URL = "http://testserver/carriers/twilio/voice"
STATUS_URL = "http://testserver/carriers/twilio/status"


def connect_twilio(tenant, *, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN):
    secret = {"account_sid": account_sid, "auth_token": auth_token}
    return credential_services.credential_create(
        tenant=tenant, name="TWILIO", provider="twilio", secret=secret, verify=False
    )


@pytest.fixture
def number():
    tenant = factories.TenantFactory(name="Acme Dental")
    factories.SubscriptionFactory(tenant=tenant)
    connect_twilio(tenant)
    return factories.PhoneNumberFactory(tenant=tenant, e164=OUR_NUMBER, provider=PhoneNumber.Provider.TWILIO)


def ring(client, params, *, url=VOICE_URL, auth_token=AUTH_TOKEN, signed_url=None, **extra):
    form = signed_form(signed_url or url, params, auth_token)
    return client.post(url.removeprefix("http://testserver"), form["data"], headers=form["headers"], **extra)


def parsed(response):
    assert response["Content-Type"] == "text/xml"
    return ElementTree.fromstring(response.content)  # noqa: S314 (our own answer)


def calls():
    return list(Call.objects.dangerously_unscoped().all())


def test_a_signed_call_to_our_number_is_created_ringing_and_bridged_to_a_media_stream(client, number):
    call_sid = new_call_sid()
    response = ring(client, voice_params(call_sid=call_sid, to=OUR_NUMBER, from_=CALLER))
    assert response.status_code == 200
    root = parsed(response)
    [connect] = list(root)
    [stream] = list(connect)
    [parameter] = list(stream)
    assert (connect.tag, stream.tag, stream.get("url")) == (
        "Connect",
        "Stream",
        "ws://testserver/ws/v1/carriers/twilio/stream",
    )
    assert parameter.get("name") == "token"
    [call] = calls()
    assert (call.tenant_id, call.agent_id, call.phone_number_id) == (number.tenant_id, number.agent_id, number.pk)
    assert (call.status, call.direction, call.external_call_id) == ("ringing", "inbound", call_sid)
    assert (call.from_number, call.to_number) == (CALLER, OUR_NUMBER)
    claims = signature.stream_claims(parameter.get("value"))
    assert claims == {"call": str(call.pk), "tenant": str(call.tenant_id), "sid": call_sid, "amd": False}


@pytest.mark.parametrize(
    "forge",
    [
        {"auth_token": "0" * 32},  # signed with another token
        {"signed_url": "http://testserver/carriers/twilio/voice?x=1"},  # signed for another URL
        {"headers": {}},  # not signed at all
    ],
    ids=["wrong-token", "wrong-url", "unsigned"],
)
def test_a_forged_or_unsigned_request_is_a_403_and_creates_nothing(client, number, forge):
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER)
    unsigned = "headers" in forge
    response = client.post("/carriers/twilio/voice", params) if unsigned else ring(client, params, **forge)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert calls() == []


def test_a_changed_parameter_breaks_the_signature(client, number):
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER)
    form = signed_form(VOICE_URL, params)
    response = client.post("/carriers/twilio/voice", {**params, "From": "+15550000000"}, headers=form["headers"])
    assert response.status_code == 403
    assert calls() == []


def test_another_accounts_request_for_our_number_is_refused(client, number):
    other = "AC" + "cd" * 16
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER, account_sid=other)
    assert ring(client, params).status_code == 403
    assert calls() == []


def test_another_tenants_twilio_account_cannot_reach_this_tenants_number(client, number):
    """Another tenant signs with its own (valid) credential: the number is not theirs, so it is a 403."""
    other = factories.TenantFactory()
    connect_twilio(other, account_sid="AC" + "cd" * 16, auth_token="c" * 32)
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER, account_sid="AC" + "cd" * 16)
    assert ring(client, params, auth_token="c" * 32).status_code == 403
    assert calls() == []


def test_a_call_to_a_number_not_on_the_platform_is_rejected_unanswered(client, number):
    response = ring(client, voice_params(call_sid=new_call_sid(), to="+15550001111", from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Reject"]
    assert calls() == []


def test_a_number_of_another_carrier_is_not_reached_through_twilio(client, number):
    factories.PhoneNumberFactory(tenant=number.tenant, e164="+15550002222")  # a GoTo number
    response = ring(client, voice_params(call_sid=new_call_sid(), to="+15550002222", from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Reject"]
    assert calls() == []


def test_an_unassigned_number_is_rejected_and_creates_nothing(client, number):
    PhoneNumber.objects.dangerously_unscoped().filter(pk=number.pk).update(agent=None)
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Reject"]
    assert calls() == []


def test_a_suspended_tenant_is_rejected(client, number):
    number.tenant.status = "suspended"
    number.tenant.save()
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Reject"]
    assert calls() == []


def test_a_tenant_without_credit_tells_the_caller_and_keeps_a_rejected_call(client, number):
    number.tenant.subscription.delete()
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Say", "Hangup"]
    [call] = calls()
    assert (call.status, call.end_reason, call.metadata["rejected_reason"]) == (
        "ended",
        "rejected",
        "insufficient_credits",
    )


@pytest.mark.parametrize("refusal", ["concurrent_call_limit_reached", "agent_paused"])
def test_a_tenant_at_its_limit_or_a_paused_agent_tells_the_caller_and_keeps_a_rejected_call(client, number, refusal):
    if refusal == "agent_paused":
        number.agent.status = "paused"
        number.agent.save()
    else:
        subscription = number.tenant.subscription
        subscription.plan = factories.PlanFactory(max_concurrent_calls=1)
        subscription.save()
        factories.CallFactory(tenant=number.tenant, agent=number.agent, status="conversing")
    response = ring(client, voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER))
    assert [element.tag for element in parsed(response)] == ["Say", "Hangup"]
    call = Call.objects.dangerously_unscoped().get(to_number=OUR_NUMBER, direction="inbound", status="ended")
    assert (call.end_reason, call.metadata["rejected_reason"]) == ("rejected", refusal)


def test_a_repeated_webhook_for_a_ringing_call_bridges_the_same_call(client, number):
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER)
    first, second = ring(client, params), ring(client, params)
    assert [parsed(r)[0].tag for r in (first, second)] == ["Connect", "Connect"]
    assert len(calls()) == 1


def test_missing_parameters_are_a_400_with_the_error_shape(client, number):
    params = {"AccountSid": ACCOUNT_SID, "To": OUR_NUMBER}
    response = ring(client, params)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_request",
        "message": "Missing Twilio parameter(s): CallSid, From.",
        "fields": {},
    }


def test_the_public_base_url_setting_is_the_url_twilio_signed(client, number, settings):
    settings.TWILIO_WEBHOOK_BASE_URL = "https://voice.example.com"
    params = voice_params(call_sid=new_call_sid(), to=OUR_NUMBER, from_=CALLER)
    response = ring(client, params, url="https://voice.example.com/carriers/twilio/voice")
    assert parsed(response)[0][0].get("url") == "wss://voice.example.com/ws/v1/carriers/twilio/stream"
    assert ring(client, params).status_code == 403  # the URL Django sees is not the one Twilio signed


def test_an_unanswered_outbound_call_ends_with_twilios_reason(client, number):
    call = factories.CallFactory(
        tenant=number.tenant,
        agent=number.agent,
        direction="outbound",
        status="dialing",
        external_call_id=new_call_sid(),
    )
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.external_call_id, "CallStatus": "busy"}
    response = ring(client, params, url=STATUS_URL)
    assert response.status_code == 204
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == ("ended", "busy", "busy")


def test_a_call_twilio_completes_before_its_stream_started_is_ended(client, number):
    call_sid = new_call_sid()
    ring(client, voice_params(call_sid=call_sid, to=OUR_NUMBER, from_=CALLER))  # ringing; the stream never comes
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": "completed"}
    assert ring(client, params, url=STATUS_URL).status_code == 204
    [call] = calls()
    assert (call.status, call.end_reason, call.metadata["failure_reason"]) == (
        "ended", "caller_hangup", "ended_before_media",
    )  # fmt: skip


def test_a_forged_status_callback_changes_nothing(client, number):
    call = factories.CallFactory(
        tenant=number.tenant,
        agent=number.agent,
        direction="outbound",
        status="dialing",
        external_call_id=new_call_sid(),
    )
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call.external_call_id, "CallStatus": "busy"}
    assert ring(client, params, url=STATUS_URL, auth_token="0" * 32).status_code == 403
    call.refresh_from_db()
    assert call.status == "dialing"


def test_a_status_callback_for_an_unknown_call_is_a_404(client, number):
    params = {"AccountSid": ACCOUNT_SID, "CallSid": new_call_sid(), "CallStatus": "completed"}
    response = ring(client, params, url=STATUS_URL)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "call_not_found")


def test_a_get_is_refused(client, number):
    assert client.get("/carriers/twilio/voice").status_code == 405


def test_a_connected_call_twilio_completed_is_ended_by_the_sweep_when_its_bridge_is_gone(client, number):
    call_sid = new_call_sid()
    ring(client, voice_params(call_sid=call_sid, to=OUR_NUMBER, from_=CALLER))
    [call] = calls()
    call_services.call_mark_connected(call_id=call.pk, tenant_id=call.tenant_id)
    params = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": "completed", "CallDuration": "42"}

    assert ring(client, params, url=STATUS_URL).status_code == 204
    call.refresh_from_db()
    assert call.status == "connected"  # its bridge ends it, with the reason it knows
    hung_up_at = datetime.fromisoformat(call.metadata["carrier_ended_at"])

    # The bridge's process is gone: nobody ends it, until the sweep after the grace, at Twilio's time.
    assert call_services.calls_end_stuck(now=hung_up_at + timedelta(seconds=59)) == 0
    assert call_services.calls_end_stuck(now=hung_up_at + timedelta(seconds=61)) == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.metadata["failure_reason"], call.ended_at) == (
        "ended", "error", "bridge_lost", hung_up_at,
    )  # fmt: skip
