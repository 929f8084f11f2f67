"""OAuth2 client credentials (RFC 6749 §4.4) with a per-process token cache.

Tokens are cached per (tenant, service, token URL, client id, scopes) and refreshed before they
expire: when less than 60 s, or 10% of their lifetime for short-lived tokens, remains. Concurrent
calls needing a token share one fetch. The token endpoint is called through the service's own
client, so its TLS settings (CA, client certificate) apply there too.
"""

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from integrations.gateway import GatewayAuthError, GatewayConfigError

REFRESH_MARGIN_SECONDS = 60.0
REFRESH_MARGIN_FRACTION = 0.1
DEFAULT_LIFETIME_SECONDS = 3600.0  # when the endpoint does not say (expires_in is only RECOMMENDED)


@dataclass(frozen=True)
class ClientCredentials:
    """An auth block with its ${SECRET} references resolved."""

    service: str
    token_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ()


class TokenClient(Protocol):
    """What fetching a token needs of an HTTP client: an httpx.AsyncClient, or anything posting like one."""

    async def post(
        self, url: str, *, data: dict[str, str], auth: tuple[str, str], headers: dict[str, str], timeout: float
    ) -> httpx.Response: ...


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float
    lifetime: float

    def fresh(self, now: float) -> bool:
        margin = min(REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_FRACTION * self.lifetime)
        return self.expires_at - now > margin


class TokenCache:
    """Access tokens of this process, shared by every Gateway in it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._tokens: dict[tuple, _Token] = {}
        self._guard = threading.Lock()
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> {key: Lock}

    @staticmethod
    def key(tenant_id, creds: ClientCredentials) -> tuple:
        return (str(tenant_id), creds.service, creds.token_url, creds.client_id, creds.scopes)

    def _lock(self, key: tuple) -> asyncio.Lock:
        # asyncio.Lock belongs to one event loop; request_sync runs a new loop per call.
        with self._guard:
            locks = self._locks.setdefault(asyncio.get_running_loop(), {})
            return locks.setdefault(key, asyncio.Lock())

    async def token(self, client: TokenClient, tenant_id, creds: ClientCredentials, timeout) -> str:
        """A valid access token, fetched only when none is cached or the cached one is about to expire."""
        key = self.key(tenant_id, creds)
        cached = self._tokens.get(key)
        if cached and cached.fresh(self.clock()):
            return cached.value
        async with self._lock(key):
            cached = self._tokens.get(key)  # another task may have fetched it while we waited
            if cached and cached.fresh(self.clock()):
                return cached.value
            token = await fetch_token(client, creds, timeout, self.clock)
            self._tokens[key] = token
            return token.value

    def invalidate(self, tenant_id, creds: ClientCredentials, value: str) -> None:
        """Drop a token the backend refused (401), unless a newer one already replaced it."""
        key = self.key(tenant_id, creds)
        with self._guard:
            if (cached := self._tokens.get(key)) and cached.value == value:
                del self._tokens[key]

    def clear(self) -> None:
        self._tokens.clear()


async def fetch_token(client: TokenClient, creds: ClientCredentials, timeout, clock) -> _Token:
    """Exchange the client credentials for an access token at the token endpoint."""
    data = {"grant_type": "client_credentials"}
    if creds.scopes:
        data["scope"] = " ".join(creds.scopes)
    where = f"OAuth2 token endpoint of service {creds.service!r}"
    try:
        response = await client.post(
            creds.token_url,
            data=data,
            auth=(creds.client_id, creds.client_secret),  # HTTP Basic, which RFC 6749 §2.3.1 requires servers to accept
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise GatewayAuthError(f"{where} is unreachable ({type(exc).__name__}).", service=creds.service) from exc
    return _parse_token(response, where, creds.service, clock)


def _parse_token(response: httpx.Response, where: str, service: str, clock) -> _Token:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if status in (400, 401, 403):
        reason = str(body.get("error", ""))[:100] if isinstance(body, dict) else ""
        raise GatewayConfigError(f"{where} refused the client credentials (HTTP {status} {reason}).", service=service)
    if status >= 300 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise GatewayAuthError(f"{where} failed (HTTP {status}, no access_token in the answer).", service=service)
    try:
        lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    return _Token(body["access_token"], clock() + lifetime, lifetime)
