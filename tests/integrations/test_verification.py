"""Provider checks through the real SDKs against local servers that speak each provider's protocol."""

import base64

import jwt
import pytest

from integrations import netguard, verification
from tests.integrations.fakes import CREDENTIALS, providers_fixture  # noqa: F401 (the `providers` fixture)

PRIMARY = {"anthropic": "api_key", "deepgram": "api_key", "gotoconnect": "client_secret", "livekit": "api_secret"}
PRIMARY["twilio"] = "auth_token"
PRIMARY["http"] = "value"

ACCEPTED = {
    "anthropic": "200 OK: the key lists models (claude-sonnet-4-20250514)",
    "deepgram": "200 OK: the key lists 1 project(s)",
    "livekit": "200 OK: the key lists 1 room(s)",
    "twilio": "200 OK: the account is active (Full)",
    "http": "200 OK",
}
REFUSED = {
    "anthropic": "401 Unauthorized: authentication_error: invalid x-api-key",
    "deepgram": "401 Unauthorized: INVALID_AUTH: Invalid credentials.",
    # LiveKit quotes the refused JWT, whose payload holds the API key: the whole token is masked.
    "livekit": "401 Unauthorized: unauthenticated: invalid token: ••••, error: Signature verification failed",
    "twilio": "401 Unauthorized: 20003: Unable to fetch record: Authenticate",
    "http": "401 Unauthorized: token 'Bearer ••••' is not valid",  # the backend echoed it: scrubbed
}


def _wrong(secret: dict, provider: str) -> dict:
    field = PRIMARY[provider]
    return {**secret, field: secret[field][:-4] + "XXXX"}


@pytest.mark.parametrize("provider", list(ACCEPTED))
def test_a_valid_secret_is_accepted_with_the_providers_answer(providers, provider):
    result = verification.verify(provider, providers.secret(provider))
    assert (result.ok, result.status, result.message) == (True, "verified", ACCEPTED[provider])
    assert len(providers.requests) == 1


@pytest.mark.parametrize("provider", list(REFUSED))
def test_a_refused_secret_fails_with_the_providers_answer(providers, provider):
    secret = _wrong(providers.secret(provider), provider)
    result = verification.verify(provider, secret)
    assert (result.ok, result.status, result.message) == (False, "failed", REFUSED[provider])
    assert secret[PRIMARY[provider]] not in result.message
    assert len(providers.requests) == 1  # no retries: one refusal is an answer


def test_each_sdk_speaks_its_providers_protocol(providers):
    for provider in ACCEPTED:
        verification.verify(provider, providers.secret(provider))
    anthropic, deepgram, livekit, twilio, backend = providers.requests
    assert (anthropic.method, anthropic.path, anthropic.query) == ("GET", "/v1/models", {"limit": ["1"]})
    assert anthropic.headers.get("x-api-key") == CREDENTIALS["anthropic"]["api_key"]
    assert anthropic.headers.get("anthropic-version")
    assert deepgram.headers.get("Authorization") == f"Token {CREDENTIALS['deepgram']['api_key']}"
    token = livekit.headers.get("Authorization").removeprefix("Bearer ")
    claims = jwt.decode(token, CREDENTIALS["livekit"]["api_secret"], algorithms=["HS256"])
    assert (claims["iss"], claims["video"]["roomList"]) == (CREDENTIALS["livekit"]["api_key"], True)
    assert backend.headers.get("Authorization") == f"Bearer {CREDENTIALS['http']['value']}"
    account = CREDENTIALS["twilio"]
    assert (twilio.method, twilio.path) == ("GET", f"/2010-04-01/Accounts/{account['account_sid']}.json")
    basic = base64.b64encode(f"{account['account_sid']}:{account['auth_token']}".encode()).decode()
    assert twilio.headers.get("Authorization") == f"Basic {basic}"


def test_a_goto_credential_is_left_unverified_because_goto_has_no_client_credentials_grant(providers):
    result = verification.verify("gotoconnect", providers.secret("gotoconnect"))
    assert (result.ok, result.status, result.message) == (None, "unverified", verification.GOTO_NOT_CHECKED)
    assert providers.requests == []  # nothing was asked of GoTo's token endpoint


def test_an_unknown_livekit_key_is_named_by_the_server_and_scrubbed(providers):
    secret = {**providers.secret("livekit"), "api_key": "APIunknownKey99"}
    result = verification.verify("livekit", secret)
    assert result.message == "401 Unauthorized: unauthenticated: invalid API key: ••••"


def test_the_generic_check_sends_the_header_it_is_told(providers):
    secret = {"value": CREDENTIALS["http"]["value"], "check_url": f"{providers.url}/check-key", "header": "X-API-Key"}
    assert verification.verify("http", secret).ok is True
    templated = {**secret, "check_url": f"{providers.url}/check", "header": "Authorization: Bearer <value>"}
    assert verification.verify("http", templated).ok is True
    assert [r.path for r in providers.requests] == ["/check-key", "/check"]


def test_a_generic_secret_without_check_url_is_left_unverified(providers):
    result = verification.verify("http", {"value": "anything-at-all-123"})
    assert (result.ok, result.status, result.message) == (
        None,
        "unverified",
        "Not checked: the secret has no check_url.",
    )
    assert providers.requests == []


@pytest.mark.parametrize("provider", list(ACCEPTED))
def test_an_unreachable_provider_is_a_failure_that_says_so(providers, settings, provider):
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    settings.ANTHROPIC_BASE_URL = settings.DEEPGRAM_BASE_URL = closed
    settings.TWILIO_API_BASE_URL = closed
    secret = {**providers.secret(provider), **({"url": closed} if provider == "livekit" else {})}
    if provider == "http":
        secret["check_url"] = f"{closed}/check"
    result = verification.verify(provider, secret)
    assert result.ok is False
    assert result.message.startswith(f"Could not reach {verification.PROVIDER_NAMES[provider]}: ")
    assert "refused" in result.message.lower() or "failed" in result.message.lower()


@pytest.mark.parametrize("provider", ["livekit", "http"])
def test_tenant_chosen_urls_on_private_addresses_are_refused_in_production(providers, settings, provider):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    netguard.forget()
    result = verification.verify(provider, providers.secret(provider))
    assert result.message == "127.0.0.1 is a private, loopback or link-local address, which the platform does not call."
    assert result.ok is False
    assert providers.requests == []


def test_a_twilio_account_that_is_not_active_is_not_accepted(providers, monkeypatch):
    from tests.integrations.fakes import server

    answer = server.twilio_account

    def suspended(request):
        status, headers, body = answer(request)
        return status, headers, body.replace(b'"status": "active"', b'"status": "suspended"')

    monkeypatch.setitem(server.ROUTES, ("GET", server.TWILIO_ACCOUNT), suspended)
    result = verification.verify("twilio", providers.secret("twilio"))
    assert (result.ok, result.message) == (False, "200 OK: the account is suspended, so it can carry no calls")


def test_answers_are_scrubbed_then_truncated():
    secret = {"client_id": "my-client", "client_secret": "s3cr3t-value-xyz"}
    basic = base64.b64encode(b"my-client:s3cr3t-value-xyz").decode()
    text = f"echo s3cr3t-value-xyz and Basic {basic} and my-client " + "x" * 400
    scrubbed = verification.scrub(text, secret)
    assert scrubbed.startswith("echo •••• and Basic •••• and •••• xxx")
    assert len(scrubbed) == 300 and scrubbed.endswith("…")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"type": "error", "error": {"type": "permission_error", "message": "no access"}}, "permission_error: no access"),
        ({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, "INVALID_AUTH: Invalid credentials."),
        ({"category": "INSUFFICIENT_PERMISSIONS", "message": "nope"}, "INSUFFICIENT_PERMISSIONS: nope"),
        ('{"error": "invalid_client", "error_description": "Bad client credentials"}', "invalid_client: Bad client credentials"),
        ({"code": "unauthenticated", "msg": "invalid token"}, "unauthenticated: invalid token"),
        ({"detail": "odd shape"}, '{"detail":"odd shape"}'),
        (b"<html>\n  Bad  gateway </html>", "<html> Bad gateway </html>"),
    ],
)  # fmt: skip
def test_error_bodies_of_every_common_shape_are_read(body, detail):
    assert verification.error_detail(body) == detail
    assert verification.refused(403, body).message == f"403 Forbidden: {detail}"


def test_a_token_the_provider_echoes_never_reaches_the_answer_the_api_or_the_log(providers, api_client, caplog):
    """The refused JWT's payload is base64url of {"iss": <API key>, ...}: masked whole, in the 400 and the log."""
    secret = _wrong(providers.secret("livekit"), "livekit")
    body = {"name": "Media", "provider": "livekit", "secret": secret}
    with caplog.at_level("INFO"):
        response = api_client.post("/v1/credentials", body, format="json")
    assert response.status_code == 400
    shown = response.content.decode() + caplog.text
    assert "eyJ" not in shown
    for value in secret.values():
        assert value not in shown or value == secret["url"]
        assert base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")[:-4] not in shown


@pytest.mark.parametrize(
    "encode",
    [
        lambda v: v,
        lambda v: base64.b64encode(v.encode()).decode(),
        lambda v: base64.urlsafe_b64encode(f'{{"iss":"{v}","exp":1}}'.encode()).decode().rstrip("="),
        lambda v: jwt.encode({"iss": v}, "another-secret-of-thirty-two-bytes!", algorithm="HS256"),
        lambda v: __import__("urllib.parse").parse.quote(v, safe=""),
    ],
    ids=["raw", "base64", "base64url-json", "jwt", "url-encoded"],
)
def test_scrub_masks_a_secret_in_every_encoding_a_provider_echoes(encode):
    secret = {"api_key": "APIkey/with+odd=chars01", "api_secret": "s3cr3t-value-0123456789"}
    for value in secret.values():
        text = verification.scrub(f"401: the server said {encode(value)} was wrong", secret)
        assert value not in text
        assert "••••" in text
