"""Authentication: ${SECRET} headers resolved at call time, API keys, bearer tokens, OAuth2 client credentials."""

import base64
import itertools
import threading
from urllib.parse import parse_qs

import pytest

from integrations.gateway import GatewayAuthError, GatewayConfigError, GatewayUnavailable
from integrations.gateway.client import Gateway
from integrations.gateway.oauth import TokenCache
from tests.gateway.conftest import DictResolver, Sleeps, make_service
from tests.gateway.server import Reply
from tests.gateway.test_retry import closed_port


async def test_header_secrets_are_resolved_at_call_time(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, headers={"Authorization": "Bearer ${API_TOKEN}", "X-Tenant": "acme"})
    await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    resolver.secrets["API_TOKEN"] = "tok-rotated-22"
    await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    sent = [r.headers["authorization"] for r in server.hits("/r")]
    assert sent == ["Bearer tok-3f9a7c1e", "Bearer tok-rotated-22"]
    assert server.hits("/r")[0].headers["x-tenant"] == "acme"


async def test_a_secret_field_reference(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    resolver.secrets["BACKEND"] = {"api_key": "key-7d1c2b9a"}
    service = make_service(server.url, headers={"X-API-Key": "${BACKEND.api_key}"})
    await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert server.hits("/r")[0].headers["x-api-key"] == "key-7d1c2b9a"
    assert resolver.calls == [("BACKEND", "api_key")]


async def test_a_missing_secret_is_a_config_error_naming_it_and_nothing_is_sent(gateway, server, tenant_id, resolver):
    server.script("/r", Reply(200))
    service = make_service(server.url, headers={"Authorization": "Bearer ${TICKETING_TOKEN}"})
    with pytest.raises(GatewayConfigError, match=r"\$\{TICKETING_TOKEN\} used by service 'backend'") as caught:
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert caught.value.code == "gateway_config_error"
    assert server.requests == []


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ({"type": "api_key", "value": "${API_TOKEN}"}, "x-api-key", "tok-3f9a7c1e"),
        ({"type": "api_key", "header": "X-Custom-Key", "value": "${API_TOKEN}"}, "x-custom-key", "tok-3f9a7c1e"),
        ({"type": "bearer", "value": "${API_TOKEN}"}, "authorization", "Bearer tok-3f9a7c1e"),
    ],
)
async def test_api_key_and_bearer_auth(gateway, server, tenant_id, resolver, auth, header, value):
    server.script("/r", Reply(200))
    await gateway.request(make_service(server.url, auth=auth), tenant_id=tenant_id, resolver=resolver, path="/r")
    assert server.hits("/r")[0].headers[header] == value


# --- OAuth2 client credentials --------------------------------------------------------------------------


class TokenServer:
    """A token endpoint that hands out tok-1, tok-2, ... and a backend that accepts only the latest."""

    def __init__(self, server, expires_in=3600):
        self.server, self.expires_in, self.counter = server, expires_in, itertools.count(1)
        self.latest = None
        server.script("/token", self.token)
        server.script("/api", self.api)

    def token(self, request):
        self.latest = f"tok-{next(self.counter)}"
        return Reply(200, json={"access_token": self.latest, "token_type": "Bearer", "expires_in": self.expires_in})

    def api(self, request):
        ok = request.headers.get("authorization") == f"Bearer {self.latest}"
        return Reply(200, json={"ok": True}) if ok else Reply(401, json={"error": "invalid_token"})

    @property
    def fetches(self):
        return self.server.hits("/token")


def oauth_service(server, token_url=None, **extra):
    auth = {
        "type": "oauth2",
        "token_url": token_url or f"{server.url}/token",
        "client_id": "voice-client",
        "client_secret": "${CLIENT_SECRET}",
        "scopes": ["voice.read", "voice.write"],
    }
    return make_service(server.url, auth=auth, **extra)


async def test_a_token_is_fetched_with_the_client_credentials_and_scopes(gateway, server, tenant_id, resolver):
    tokens = TokenServer(server)
    await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
    (fetch,) = tokens.fetches
    assert parse_qs(fetch.body.decode()) == {"grant_type": ["client_credentials"], "scope": ["voice.read voice.write"]}
    assert fetch.headers["authorization"] == "Basic " + base64.b64encode(b"voice-client:cs-8b2d4e6f").decode()
    assert server.hits("/api")[0].headers["authorization"] == "Bearer tok-1"


async def test_the_token_is_cached_per_tenant_and_service(gateway, server, tenant_id, resolver):
    tokens = TokenServer(server)
    for _ in range(3):
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
    assert len(tokens.fetches) == 1
    await gateway.request(oauth_service(server), tenant_id=f"{tenant_id}-b", resolver=resolver, path="/api")
    assert len(tokens.fetches) == 2


@pytest.mark.parametrize(
    ("lifetime", "kept_at", "refreshed_at"),
    [(3600, 3539.0, 3541.0), (300, 269.0, 271.0)],  # 60 s before expiry, or 10% of a short lifetime
)
async def test_the_token_is_refreshed_before_it_expires(server, tenant_id, resolver, lifetime, kept_at, refreshed_at):
    tokens = TokenServer(server, expires_in=lifetime)
    clock = type("Clock", (), {"now": 0.0, "__call__": lambda self: self.now})()
    async with Gateway(redis_url="", audit=False, sleep=Sleeps(), tokens=TokenCache(clock)) as gateway:
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
        clock.now = kept_at
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
        assert len(tokens.fetches) == 1
        clock.now = refreshed_at
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
    assert len(tokens.fetches) == 2
    assert server.hits("/api")[-1].headers["authorization"] == "Bearer tok-2"


async def test_a_401_drops_the_token_and_retries_once_with_a_fresh_one(gateway, server, tenant_id, resolver):
    tokens = TokenServer(server)
    await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
    tokens.latest = "revoked-by-the-server"  # the cached tok-1 is refused from now on
    response = await gateway.request(
        oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api", method="POST"
    )
    assert response.json() == {"ok": True}
    assert [r.headers["authorization"] for r in server.hits("/api")] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_a_token_server_outage_is_a_gateway_error_counted_by_the_breaker(gateway, server, tenant_id, resolver):
    breaker = {"threshold": 2, "timeout": "30s"}
    service = oauth_service(server, token_url=f"http://127.0.0.1:{closed_port()}/token", circuit_breaker=breaker)
    for _ in range(2):
        with pytest.raises(GatewayAuthError, match="OAuth2 token endpoint of service 'backend' is unreachable"):
            await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/api")
    with pytest.raises(GatewayUnavailable):
        await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/api")
    assert server.hits("/api") == []


async def test_a_token_endpoint_5xx_is_a_gateway_error(gateway, server, tenant_id, resolver):
    server.script("/token", Reply(503, body=b"maintenance"))
    with pytest.raises(GatewayAuthError, match="HTTP 503"):
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")


async def test_refused_client_credentials_are_a_config_error(gateway, server, tenant_id, resolver):
    server.script("/token", Reply(401, json={"error": "invalid_client"}))
    with pytest.raises(GatewayConfigError, match=r"refused the client credentials \(HTTP 401 invalid_client"):
        await gateway.request(oauth_service(server), tenant_id=tenant_id, resolver=resolver, path="/api")
    assert server.hits("/api") == []


class ThreadRecordingResolver(DictResolver):
    def resolve(self, name, field=None):
        self.threads.append(threading.get_ident())
        return super().resolve(name, field)


@pytest.mark.parametrize("blocking", [True, False])
async def test_a_blocking_resolver_is_called_off_the_event_loop(gateway, server, tenant_id, blocking):
    server.script("/r", Reply(200))
    resolver = ThreadRecordingResolver({"API_TOKEN": "tok-3f9a7c1e"})
    resolver.threads, resolver.blocking = [], blocking
    service = make_service(server.url, headers={"Authorization": "Bearer ${API_TOKEN}"})
    await gateway.request(service, tenant_id=tenant_id, resolver=resolver, path="/r")
    assert (resolver.threads == [threading.get_ident()]) is not blocking
