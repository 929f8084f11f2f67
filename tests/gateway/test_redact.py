"""The redactor on its own: nested JSON, non-JSON text, headers, URLs and resolved secrets."""

import pytest

from integrations.gateway import GatewayHTTPError
from integrations.gateway.redact import MASK, Redactor
from tests.gateway.conftest import make_service
from tests.gateway.server import Reply

KEYS = ["password", "ssn", "credit_card"]


def test_keys_match_case_insensitively_and_ignoring_separators_at_any_depth():
    redactor = Redactor(KEYS)
    data = {"a": [{"b": {"PassWord": "x", "credit-card": 1, "CreditCard": [1, 2]}}], "ssn_last4": "kept", "SSN": None}
    assert redactor.json(data) == {
        "a": [{"b": {"PassWord": MASK, "credit-card": MASK, "CreditCard": MASK}}],
        "ssn_last4": "kept",
        "SSN": MASK,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2&user=ann", f"password={MASK}&user=ann"),
        ('{"ssn": "123-45-6789", "x": 1', f'{{"ssn": {MASK}, "x": 1'),  # cut-off JSON is still redacted
        ("credit_card: 4111 1111", f"credit_card: {MASK} 1111"),
        ("no secrets here", "no secrets here"),
    ],
)
def test_text_that_is_not_json(text, expected):
    assert Redactor(KEYS).text(text) == expected


def test_resolved_secrets_are_scrubbed_in_every_encoding():
    redactor = Redactor(KEYS, secrets=["a/b c+d", "ab"])  # too short to scrub: "ab" stays
    assert redactor.text("raw a/b c+d, url a%2Fb%20c%2Bd, form a%2Fb+c%2Bd, ab") == (
        f"raw {MASK}, url {MASK}, form {MASK}, ab"
    )


def test_headers_and_urls():
    redactor = Redactor(KEYS, secrets=["tok-123456"])
    headers = {"Authorization": "Bearer x", "Cookie": "c", "X-Api-Key": "k", "X-Password": "p", "X-Echo": "tok-123456"}
    assert redactor.headers(headers) == {
        "Authorization": MASK,
        "Cookie": MASK,
        "X-Api-Key": MASK,
        "X-Password": MASK,
        "X-Echo": MASK,
    }
    assert redactor.url("https://u:pw@h.example/p?password=x&q=tok-123456") == (
        f"https://{MASK}@h.example/p?password={MASK}&q={MASK}"
    )


async def test_the_error_excerpt_of_a_failed_call_is_redacted(gateway, server, tenant_id, resolver):
    server.script("/r", lambda request: Reply(400, json={"password": "hunter2", "got": request.headers["x-key"]}))
    service = make_service(server.url, headers={"X-Key": "${API_TOKEN}"})
    with pytest.raises(GatewayHTTPError) as caught:
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert caught.value.body == f'{{"password": {MASK}, "got": "{MASK}"}}'
