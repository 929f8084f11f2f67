"""Signatures checked with the Standard Webhooks reference implementation (the standardwebhooks package)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from integrations.webhooks import services, signing
from tests import factories

BODY = '{"type":"call.ended","timestamp":"2026-11-22T10:30:00Z","data":{"call_id":"c1"}}'


def signed(secrets, *, timestamp=None, body=BODY):
    return signing.headers(secrets, message_id="msg_1", timestamp=timestamp or int(time.time()), body=body)


def test_a_signature_verifies_with_the_reference_library():
    secret = signing.generate_secret()

    payload = Webhook(secret).verify(BODY, signed([secret]))

    assert secret.startswith("whsec_")
    assert payload == {"type": "call.ended", "timestamp": "2026-11-22T10:30:00Z", "data": {"call_id": "c1"}}


def test_another_secret_or_a_changed_body_does_not_verify():
    secret = signing.generate_secret()
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(signing.generate_secret()).verify(BODY, signed([secret]))
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(BODY.replace("c1", "c2"), signed([secret]))


@pytest.mark.parametrize(("offset", "message"), [(-301, "too old"), (301, "too new")])
def test_timestamps_outside_the_tolerance_are_rejected(offset, message):
    secret = signing.generate_secret()
    headers = signed([secret], timestamp=int(time.time()) + offset)

    with pytest.raises(WebhookVerificationError, match=message):
        Webhook(secret).verify(BODY, headers)
    assert Webhook(secret).verify(BODY, signed([secret], timestamp=int(time.time()) - 240))  # within 5 minutes


@pytest.mark.django_db
def test_during_rotation_both_secrets_verify_and_after_the_overlap_only_the_new_one(tenant):
    issued = services.webhook_endpoint_create(tenant=tenant, url="https://hooks.example.com/a", event_types=["*"])
    old = issued.secret
    new = services.webhook_endpoint_rotate_secret(endpoint=issued.endpoint, overlap_hours=24).secret
    endpoint = issued.endpoint
    endpoint.refresh_from_db()

    during = signed(services.endpoint_secrets(endpoint))
    after = signed(services.endpoint_secrets(endpoint, now=timezone.now() + timedelta(hours=25)))

    assert len(during["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, during) and Webhook(new).verify(BODY, during)
    assert Webhook(new).verify(BODY, after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, after)


@pytest.mark.django_db
def test_secrets_are_sealed_to_their_endpoint(tenant, other_tenant):
    issued = services.webhook_endpoint_create(tenant=tenant, url="https://hooks.example.com/a", event_types=["*"])
    endpoint = issued.endpoint
    assert issued.secret.encode() not in bytes(endpoint.secret_ciphertext)
    thief = factories.WebhookEndpointFactory(tenant=other_tenant)
    thief.secret_key_id, thief.secret_nonce, thief.secret_ciphertext = (
        endpoint.secret_key_id,
        endpoint.secret_nonce,
        endpoint.secret_ciphertext,
    )

    with pytest.raises(Exception, match="cannot be decrypted"):
        services.endpoint_secrets(thief)  # a ciphertext copied to another endpoint does not open
