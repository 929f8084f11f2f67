"""The gateway client: the one way agent tools, webhooks and provider calls reach a tenant backend.

    async with Gateway() as gateway:
        response = await gateway.request(service, tenant_id=tenant.id, resolver=secret_resolver(tenant),
                                         json={...}, call_session_id=call.id)

One call = secrets resolved, breaker consulted, rate limits taken, then up to max_attempts HTTP
attempts, then one audit row, one log line and the metrics. With settings.REDIS_URL the breaker and
the buckets live in Redis under `gw:{tenant_id}:{service}:...`; without it, in this process.
"""

import asyncio
import json as jsonlib
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import unquote
from uuid import UUID

import httpx
from asgiref.sync import async_to_sync, sync_to_async
from httpx._types import QueryParamTypes  # httpx's own name for what `params=` accepts

from core.errors import ApplicationError
from integrations.config import SECRET_REF, ServiceConfig
from integrations.gateway import (
    GatewayAuthError,
    GatewayConfigError,
    GatewayConnectionError,
    GatewayError,
    GatewayHTTPError,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
    metrics,
)
from integrations.gateway.audit import AuditRecord, log_call, write_row_async
from integrations.gateway.breaker import FAILURE, NEUTRAL, SUCCESS, LocalBreakers, RedisBreakers
from integrations.gateway.oauth import ClientCredentials, TokenCache
from integrations.gateway.ratelimit import Bucket, LocalRateLimiter, RedisRateLimiter, acquire
from integrations.gateway.redact import Redactor
from integrations.gateway.retry import retrying, safe_to_repeat
from integrations.gateway.tls import fingerprint, ssl_context
from integrations.netguard import address_problem

# Process-wide state for the embedded default (no REDIS_URL): every Gateway of the process shares it.
LOCAL_BREAKERS = LocalBreakers()
LOCAL_LIMITER = LocalRateLimiter()
TOKENS = TokenCache()
_FROM_SETTINGS = object()
BODY_EXCERPT_CHARS = 500
BREAKER_FAILURES = (GatewayTimeout, GatewayConnectionError, GatewayAuthError)


@dataclass
class GatewayResponse:
    """A backend's successful (< 400) answer."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    attempts: int

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return jsonlib.loads(self.content)


@dataclass
class _Resolved:
    """A service's headers and credentials with every ${SECRET} replaced, for one call."""

    headers: dict[str, str]
    oauth: ClientCredentials | None = None
    tls: tuple[str, str, str] | None = None
    secrets: list[str] = field(default_factory=list)


@dataclass
class _Call:
    service: ServiceConfig
    tenant_id: str | UUID
    method: str
    url: str
    params: QueryParamTypes | None
    body: object
    call_session_id: str
    safe: bool
    redactor: Redactor
    content: bytes | None = None  # a body sent byte for byte (signed webhooks) instead of `body` as JSON
    extra_headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    headers: dict[str, str] = field(default_factory=dict)
    sent_headers: dict[str, str] = field(default_factory=dict)
    oauth: ClientCredentials | None = None
    client: httpx.AsyncClient | None = None
    response: httpx.Response | None = None
    retries: int = 0
    token_refreshed: bool = False

    @property
    def labels(self) -> tuple[str, str]:
        return str(self.tenant_id), self.service.name


def resolve_secrets(service: ServiceConfig, resolver, idempotency_key: str | None) -> _Resolved:
    """Replace every ${NAME} / ${NAME.field} of the service (sync: a vault may read the database)."""
    found: list[str] = []

    def resolve(text: str) -> str:
        return SECRET_REF.sub(lambda m: _lookup(resolver, m, service.name, found), text) if text else text

    headers = {name: resolve(value) for name, value in service.headers.items()}
    auth = service.auth
    oauth = None
    if auth.type == "api_key":
        headers[auth.header] = resolve(auth.value)
    elif auth.type == "bearer":
        headers["Authorization"] = f"Bearer {resolve(auth.value)}"
    elif auth.type == "oauth2":
        oauth = ClientCredentials(
            service.name, auth.token_url, resolve(auth.client_id), resolve(auth.client_secret), auth.scopes
        )
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    tls = service.tls
    material = (resolve(tls.cert), resolve(tls.key), resolve(tls.ca)) if tls.enabled else None
    return _Resolved(headers, oauth, material, found)


def _lookup(resolver, match, service: str, found: list[str]) -> str:
    name, part = match.group(1), match.group(2)
    try:
        value = resolver.resolve(name, part)
    except (ApplicationError, LookupError) as exc:
        detail = getattr(exc, "message", None) or "not found"
        raise GatewayConfigError(
            f"Secret ${{{match.group(0)[2:-1]}}} used by service {service!r} cannot be resolved: {detail}",
            service=service,
        ) from exc
    found.append(value)
    return value


def join_url(base: str, path: str) -> str:
    """The service URL with `path` appended: a path (possibly from an LLM tool call) never leaves the base."""
    if not path:
        return base
    segments = unquote(path.split("?", 1)[0]).split("/")
    if "://" in path or ".." in segments:
        raise GatewayConfigError(f"path {path!r} must stay below the service URL")
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def max_call_seconds(service: ServiceConfig) -> float:
    """The longest one call can take (queueing, every attempt and wait): a half-open trial's lease."""
    retry, limits = service.retry, service.rate_limit
    queueing = limits.queue_depth / limits.requests_per_second if limits.requests_per_second else 0.0
    if limits.per_call_rps:
        queueing = max(queueing, limits.queue_depth / limits.per_call_rps)
    return queueing + service.timeout * retry.max_attempts + retry.max_backoff * (retry.max_attempts - 1) + 1.0


class Gateway:
    """Outbound calls with retry, rate limit, circuit breaker, auth, TLS, audit and metrics.

    One Gateway per event loop (its HTTP and Redis connections belong to the loop that first used
    them): use `get_gateway()` in async code and `request_sync()` in Celery tasks.
    """

    def __init__(
        self,
        *,
        redis_url=_FROM_SETTINGS,
        key_prefix: str = "gw",
        audit: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        jitter: str = "equal",
        tokens: TokenCache = TOKENS,
        clock: Callable[[], float] | None = None,
    ):
        if redis_url is _FROM_SETTINGS:
            from django.conf import settings

            redis_url = settings.REDIS_URL
        self.key_prefix, self.audit, self.sleep, self.rand, self.jitter = key_prefix, audit, sleep, rand, jitter
        self.tokens = tokens
        self._redis = None
        self.breakers: LocalBreakers | RedisBreakers
        self.limiter: LocalRateLimiter | RedisRateLimiter
        if redis_url:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(redis_url)
            self.breakers, self.limiter = RedisBreakers(self._redis, clock=clock), RedisRateLimiter(self._redis, clock)
        else:
            # `clock` (tests): breakers of its own on that clock, not the process-wide ones.
            self.breakers, self.limiter = (LocalBreakers(clock) if clock else LOCAL_BREAKERS), LOCAL_LIMITER
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def __aenter__(self) -> "Gateway":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    async def request(
        self,
        service: ServiceConfig,
        *,
        tenant_id: str | UUID,
        resolver,
        path: str = "",
        json=None,
        params=None,
        method: str | None = None,
        call_session_id: str = "",
        idempotency_key: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> GatewayResponse:
        """Call `service` for tenant `tenant_id`; raise a GatewayError on any failure (see the module doc).

        `content` sends exact bytes instead of `json` (a signed body); `headers` are added to the service's
        for this call only (per-request signatures), never resolved as ${SECRET} templates.
        """
        method = (method or service.method).upper()
        call = _Call(
            service=service,
            tenant_id=tenant_id,
            method=method,
            url=service.url,
            params=params,
            body=json,
            call_session_id=str(call_session_id or ""),
            safe=safe_to_repeat(method, idempotency_key),
            redactor=Redactor(service.logging.redact),
            content=content,
            extra_headers=dict(headers or {}),
        )
        try:
            call.url = join_url(service.url, path)
            await self._prepare(call, resolver, idempotency_key)
            response = await self._guarded(call)
        except GatewayError as exc:
            exc.service = exc.service or service.name
            await self._finish(call, exc.outcome, error=exc)
            raise
        await self._finish(call, "ok")
        return GatewayResponse(response.status_code, response.headers, response.content, call.retries + 1)

    # --- preparation -------------------------------------------------------------------------------

    async def _prepare(self, call: _Call, resolver, idempotency_key: str | None) -> None:
        service = call.service
        await self._check_address(call.url)
        # A vault may read the database: never on the event loop, unless the resolver says it holds its
        # secrets in memory (`blocking = False`), which saves a thread hop per call.
        if service.secret_names() and getattr(resolver, "blocking", True):
            resolved = await sync_to_async(resolve_secrets)(service, resolver, idempotency_key)
        else:
            resolved = resolve_secrets(service, resolver, idempotency_key)
        for secret in resolved.secrets:
            call.redactor.add_secret(secret)
        call.headers, call.oauth = {**resolved.headers, **call.extra_headers}, resolved.oauth
        call.client = self._client_for(resolved.tls, service.name)

    @staticmethod
    async def _check_address(url: str) -> None:
        """Refuse tenant URLs on the platform's own networks (SSRF) unless private networks are allowed."""
        from django.conf import settings

        if settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS:
            return
        problem = await asyncio.to_thread(address_problem, url)  # resolving the host may block
        if problem:
            raise GatewayConfigError(problem, code="address_not_allowed")

    def _client_for(self, tls: tuple[str, str, str] | None, service: str) -> httpx.AsyncClient:
        key = fingerprint(*tls) if tls else ""
        client = self._clients.get(key)
        if client is None:
            verify = ssl_context(cert=tls[0], key=tls[1], ca=tls[2], service=service) if tls else True
            client = self._clients[key] = httpx.AsyncClient(verify=verify, follow_redirects=False)
        return client

    # --- breaker and rate limits -------------------------------------------------------------------

    def _key(self, call: _Call, *parts: str) -> str:
        return ":".join([self.key_prefix, str(call.tenant_id), call.service.name, *parts])

    async def _guarded(self, call: _Call) -> httpx.Response:
        policy = call.service.circuit_breaker
        permit = await self.breakers.acquire(self._key(call, "cb"), policy, max_call_seconds(call.service))
        metrics.circuit_breaker_state.labels(*call.labels).set(permit.state)
        if not permit.allowed:
            raise GatewayUnavailable(f"Service {call.service.name!r} is unavailable: its circuit breaker is open.")
        outcome = NEUTRAL  # a call cancelled or refused before reaching the backend says nothing about it
        try:
            await self._throttle(call)
            response = await self._send(call)
            outcome = FAILURE if response.status_code >= 500 or response.status_code == 429 else SUCCESS
        except BREAKER_FAILURES:
            outcome = FAILURE
            raise
        finally:
            state = await self.breakers.record(permit, outcome, policy)
            metrics.circuit_breaker_state.labels(*call.labels).set(state)
        if response.status_code >= 400:
            raise self._http_error(call, response)
        return response

    def _buckets(self, call: _Call) -> list[Bucket]:
        limits, buckets = call.service.rate_limit, []
        if limits.requests_per_second:
            buckets.append(Bucket(self._key(call, "rl"), limits.requests_per_second, limits.burst, limits.queue_depth))
        if limits.per_call_rps and call.call_session_id:
            burst = max(1, math.ceil(limits.per_call_rps))  # one second's worth: no per-call burst is configured
            key = self._key(call, "rl", "call", call.call_session_id)
            buckets.append(Bucket(key, limits.per_call_rps, burst, limits.queue_depth))
        return buckets

    async def _throttle(self, call: _Call) -> None:
        refused = await acquire(self.limiter, self._buckets(call))
        if refused is not None:
            metrics.rate_limited_total.labels(*call.labels).inc()
            scope = "call session" if ":call:" in refused.key else "service"
            raise GatewayRateLimited(
                f"Rate limit of service {call.service.name!r} reached ({scope}: {refused.rate:g}/s, "
                f"{refused.queue_depth} already waiting)."
            )

    # --- attempts ----------------------------------------------------------------------------------

    async def _send(self, call: _Call) -> httpx.Response:
        def on_retry(state) -> None:
            call.retries += 1
            metrics.retries_total.labels(*call.labels).inc()

        controller = retrying(
            call.service.retry, safe=call.safe, sleep=self.sleep, rand=self.rand, jitter=self.jitter, on_retry=on_retry
        )
        name, attempts = call.service.name, lambda: call.retries + 1
        try:
            return await controller(self._attempt, call)
        except httpx.TimeoutException as exc:
            raise GatewayTimeout(
                f"Service {name!r} did not answer within {call.service.timeout:g}s ({attempts()} attempt(s))."
            ) from exc
        except httpx.TransportError as exc:
            raise GatewayConnectionError(
                f"Service {name!r} could not be reached: {type(exc).__name__} ({attempts()} attempt(s))."
            ) from exc

    async def _attempt(self, call: _Call) -> httpx.Response:
        headers, token, client, oauth = call.headers, None, call.client, call.oauth
        assert client is not None  # _prepare chose it before any attempt
        if oauth is not None:
            token = await self.tokens.token(client, call.tenant_id, oauth, call.service.timeout)
            call.redactor.add_secret(token)
            headers = {**headers, "Authorization": f"Bearer {token}"}
        call.sent_headers = headers
        body = {"json": call.body} if call.content is None else {"content": call.content}
        call.response = await client.request(
            call.method, call.url, params=call.params, headers=headers, timeout=call.service.timeout, **body
        )
        if oauth is not None and token and call.response.status_code == 401 and not call.token_refreshed:
            # The token may have been revoked early: drop it and try once more with a fresh one.
            call.token_refreshed = True
            self.tokens.invalidate(call.tenant_id, oauth, token)
            return await self._attempt(call)
        return call.response

    def _http_error(self, call: _Call, response: httpx.Response) -> GatewayHTTPError:
        excerpt = call.redactor.text(response.text)[:BODY_EXCERPT_CHARS]
        return GatewayHTTPError(
            f"Service {call.service.name!r} answered HTTP {response.status_code} ({call.retries + 1} attempt(s)).",
            status=response.status_code,
            body=excerpt,
        )

    # --- audit, log, metrics -----------------------------------------------------------------------

    async def _finish(self, call: _Call, outcome: str, error: Exception | None = None) -> None:
        duration = time.perf_counter() - call.started
        metrics.requests_total.labels(*call.labels).inc()
        metrics.request_duration_seconds.labels(*call.labels).observe(duration)
        if outcome != "ok":
            metrics.errors_total.labels(*call.labels, outcome).inc()
        record = self._record(call, outcome, round(duration * 1000), error)
        log_call(record)
        if self.audit:
            await write_row_async(record)

    def _record(self, call: _Call, outcome: str, duration_ms: int, error: Exception | None) -> AuditRecord:
        redactor, logging_policy, response = call.redactor, call.service.logging, call.response
        try:
            url = str(httpx.URL(call.url, params=call.params))
        except Exception:  # an unparsable URL is itself what the row reports
            url = call.url
        return AuditRecord(
            tenant_id=call.tenant_id,
            service=call.service.name,
            method=call.method,
            url=redactor.url(url),
            call_session_id=call.call_session_id,
            outcome=outcome,
            duration_ms=duration_ms,
            retry_count=call.retries,
            status_code=response.status_code if response is not None else None,
            error=redactor.text(_describe(error)) if error else "",
            request_headers=redactor.headers(call.sent_headers or call.headers)
            if logging_policy.include_headers
            else None,
            request_body=redactor.json(call.body) if logging_policy.include_payload else None,
            response_body=redactor.body(response.content) if logging_policy.include_payload and response else None,
        )


def _describe(error: Exception) -> str:
    body = getattr(error, "body", "")
    return f"{error} {body}".strip()


_LOOP_GATEWAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_gateway() -> Gateway:
    """The Gateway of the running event loop (created on first use, with the settings' REDIS_URL)."""
    loop = asyncio.get_running_loop()
    gateway = _LOOP_GATEWAYS.get(loop)
    if gateway is None:
        gateway = _LOOP_GATEWAYS[loop] = Gateway()
    return gateway


def request_sync(service: ServiceConfig, **kwargs) -> GatewayResponse:
    """Gateway.request for synchronous code (Celery tasks): a short-lived Gateway on a fresh loop."""

    async def once() -> GatewayResponse:
        async with Gateway() as gateway:
            return await gateway.request(service, **kwargs)

    return async_to_sync(once)()
