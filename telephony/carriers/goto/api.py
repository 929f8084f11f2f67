"""GoTo Connect's REST API for one connected account: channels, subscriptions, devices and web calls.

    api = GoToApi(ApiConfig.from_settings(), tokens=grant.tokens_for(connection_id))
    channel = await api.create_channel("voice-gateway-1a2b")
    placed = await api.place_call(device_id=..., organization_id=..., extension=..., dial_string="+1555...",
                                  channel_id=channel.channel_id, sdp=offer)

Routes and bodies are in `wire`; this module is the behaviour around them:

- the access token comes from the account's token provider (the OAuth grant); a 401 drops it, a new
  one is fetched and the request repeated once;
- GoTo's rate limit is per API (10 requests a second by default, GOTO_RATE_LIMIT_PER_SECOND): one token
  bucket per account and API, shared by every process through Redis when REDIS_URL is set;
- a 429 is waited out with jittered exponential backoff (GoTo documents no Retry-After) and retried
  for every operation: GoTo refused the request unread. 502/503/504 and lost connections are retried
  only for operations that cannot ring anyone twice (never placing a call, transferring or merging);
- GoTo's error body {"errorCode", "message", ...} becomes a GoToConnectError with our tokens masked.

One client per event loop (its HTTP and Redis connections belong to the loop that first used them).
"""

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import redis
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from integrations.config import RetryPolicy
from integrations.gateway.ratelimit import Bucket, LocalRateLimiter, RedisRateLimiter, acquire
from integrations.gateway.retry import NOT_SENT_ERRORS, backoff, outcome_of
from telephony.carriers.goto import metrics, wire
from telephony.carriers.goto.config import GoToConnectError, _checked_id, _invalid

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger(__name__)

ERROR_MESSAGE_CHARS = 200
MAX_QUEUE_SECONDS = 30.0  # how far ahead a rate-limit queue may book; beyond that, refuse
RETRY_POLICY = RetryPolicy(max_attempts=4, initial_backoff=0.25, max_backoff=4.0, multiplier=2.0)
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# Operations whose repetition cannot ring anyone twice or move a caller twice.
IDEMPOTENT = frozenset(
    {
        "create_channel",
        "refresh_channel",
        "delete_channel",
        "subscribe",
        "recover_states",
        "create_device",
        "delete_device",
        "add_extension",
        "hangup",
        "hold",
        "unhold",
        "answer",
    }
)
LOCAL_LIMITER = LocalRateLimiter()  # the embedded default (no REDIS_URL): shared by the process's clients


class TokenSource(Protocol):
    """What the account's OAuth grant gives: a valid token, and forgetting one GoTo refused."""

    async def token(self) -> str: ...

    def invalidate(self, token: str | None = None) -> None: ...

    @property
    def last_token(self) -> str | None: ...


@dataclass(frozen=True)
class ApiConfig:
    """Where GoTo's APIs are; `from_settings()` reads the GOTO_* settings."""

    api_base_url: str
    web_calls_base_url: str
    rate_limit_per_second: int = 10
    timeout_seconds: float = 10.0

    def __post_init__(self):
        if self.rate_limit_per_second < 1 or self.timeout_seconds <= 0:
            raise GoToConnectError(
                "GoTo settings are invalid: the rate limit and the timeout must be positive.",
                code="goto_config_invalid",
                status_code=500,
            )

    @classmethod
    def from_settings(cls) -> "ApiConfig":
        from django.conf import settings

        return cls(
            api_base_url=settings.GOTO_API_BASE_URL,
            web_calls_base_url=settings.GOTO_WEB_CALLS_BASE_URL,
            rate_limit_per_second=settings.GOTO_RATE_LIMIT_PER_SECOND,
            timeout_seconds=settings.GOTO_REQUEST_TIMEOUT_SECONDS,
        )


def rate_bucket(account_key: str, api: str, per_second: int) -> Bucket:
    """One API's bucket for one account: a burst of a tenth, so that no one-second window exceeds the limit."""
    burst = max(1, per_second // 10)
    rate = float(max(1, per_second - burst))
    return Bucket(
        key=f"goto:{account_key}:{api}:ratelimit",
        rate=rate,
        burst=burst,
        queue_depth=max(1, math.ceil(rate * MAX_QUEUE_SECONDS)),
    )


class GoToApi:
    """GoTo's REST API as one account (`account_key` names its rate-limit buckets). Raises GoToConnectError."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        tokens: TokenSource,
        account_key: str,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: LocalRateLimiter | RedisRateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        retry_policy: RetryPolicy = RETRY_POLICY,
    ):
        self.config, self.tokens, self.account_key = config, tokens, account_key
        self.sleep, self.rand, self.retry_policy = sleep, rand, retry_policy
        self.buckets = {api: rate_bucket(account_key, api, config.rate_limit_per_second) for api in wire.APIS}
        self._redis: AsyncRedis | None = None
        self.limiter = limiter if limiter is not None else self._default_limiter()
        self._http = httpx.AsyncClient(transport=transport, timeout=config.timeout_seconds)

    def _default_limiter(self) -> LocalRateLimiter | RedisRateLimiter:
        from django.conf import settings

        if not settings.REDIS_URL:
            return LOCAL_LIMITER
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        return RedisRateLimiter(self._redis)

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    # --- notification channel ------------------------------------------------------------------------
    async def create_channel(self, nickname: str) -> wire.Channel:
        body = await self._json("create_channel", wire.CHANNEL_CREATE, {"nickname": nickname}, wire.channel_body())
        channel = wire.channel_of(body)
        if channel is None:
            raise _bad_response("create_channel", "no channelId, channelURL or channelLifetime")
        return channel

    async def refresh_channel(self, nickname: str, channel_id: str) -> int | None:
        """Extend the channel's life; returns the new lifetime when the answer says one."""
        params = {"nickname": nickname, "channel_id": channel_id}
        response = await self._call("refresh_channel", wire.CHANNEL_REFRESH, params, wire.channel_body())
        return wire.channel_lifetime(_json_or_none(response))

    async def delete_channel(self, nickname: str, channel_id: str) -> None:
        await self._gone_is_success(
            "delete_channel", wire.CHANNEL_DELETE, {"nickname": nickname, "channel_id": channel_id}
        )

    # --- call events ---------------------------------------------------------------------------------
    async def subscribe(self, channel_id: str, account_keys: list[str]) -> list[wire.KeyStatus]:
        """Subscribe the channel to call states of the accounts: a status per key (the 207 Multi-Status)."""
        body = await self._json("subscribe", wire.SUBSCRIBE, {}, wire.subscribe_body(channel_id, account_keys))
        return wire.subscription_statuses(body, account_keys)

    async def recover_states(self, conversation_space_id: str, sequence_from: int, sequence_to: int) -> list[Any]:
        """The call states of one conversation space between two sequence numbers (grade D route)."""
        params = {"conversation_space_id": _checked_id(conversation_space_id, "conversation_space_id")}
        query = wire.recovery_query(sequence_from, sequence_to)
        body = await self._json("recover_states", wire.CONVERSATION_SPACE_EVENTS, params, None, query=query)
        return wire.recovered_states(body)

    # --- devices and web calls -----------------------------------------------------------------------
    async def create_device(self, *, device_id: str, channel_id: str, app_id: str, app_version: str) -> str:
        body = wire.device_body(device_id, channel_id, app_id, app_version)
        return wire.device_id_of(await self._json("create_device", wire.DEVICE_CREATE, {}, body)) or device_id

    async def delete_device(self, device_id: str) -> None:
        await self._gone_is_success("delete_device", wire.DEVICE_DELETE, {"device_id": device_id})

    async def add_extension(self, device_id: str, *, organization_id: str, extension: str) -> None:
        body = wire.extension_body(organization_id, extension)
        await self._call("add_extension", wire.EXTENSION_CREATE, {"device_id": device_id}, body)

    async def place_call(
        self, *, device_id: str, organization_id: str, extension: str, dial_string: str, channel_id: str, sdp: str
    ) -> wire.PlacedCall:
        """Place a web call with our SDP offer (never repeated once it may have been sent); GoTo answers."""
        if not isinstance(sdp, str) or not sdp.strip():
            raise _invalid("The SDP offer is empty.", "invalid_sdp", "sdp")
        body = wire.call_body(
            device_id=device_id,
            organization_id=organization_id,
            extension=extension,
            dial_string=dial_string,
            channel_id=channel_id,
            sdp=sdp,
        )
        placed = wire.placed_call_of(await self._json("place_call", wire.CALL_CREATE, {}, body))
        if placed is None:
            raise _bad_response("place_call", "no call id or no SDP answer")
        return placed

    async def answer(self, call_id: str, body: dict[str, str]) -> Any:
        """POST …/calls/{id}/answer (grade D); `inbound.py` builds the body and reads the answer (None: no body)."""
        response = await self._call("answer", wire.CALL_ANSWER, {"call_id": _checked_id(call_id, "call_id")}, body)
        return _json_or_none(response)

    async def hangup(self, call_id: str) -> None:
        """End a web call; one GoTo no longer knows (404) is already hung up, which is success."""
        await self._gone_is_success("hangup", wire.CALL_HANGUP, {"call_id": _checked_id(call_id, "call_id")})

    async def hold(self, call_id: str) -> None:
        await self._call("hold", wire.CALL_HOLD, {"call_id": _checked_id(call_id, "call_id")})

    async def unhold(self, call_id: str) -> None:
        await self._call("unhold", wire.CALL_UNHOLD, {"call_id": _checked_id(call_id, "call_id")})

    async def dtmf(self, call_id: str, tones: str) -> None:
        if not isinstance(tones, str) or not tones or any(t not in "0123456789*#ABCD" for t in tones):
            raise _invalid("DTMF tones are digits, *, # or A-D.", "invalid_dtmf", "tone")
        await self._call("dtmf", wire.CALL_DTMF, {"call_id": _checked_id(call_id, "call_id")}, wire.dtmf_body(tones))

    async def blind_transfer(self, call_id: str, dial_string: str) -> None:
        params = {"call_id": _checked_id(call_id, "call_id")}
        await self._call("blind_transfer", wire.CALL_BLIND_TRANSFER, params, wire.dial_body(dial_string))

    async def warm_transfer(self, call_id: str, refer_id: str) -> None:
        params, body = {"call_id": _checked_id(call_id, "call_id")}, wire.refer_body(_checked_id(refer_id, "refer_id"))
        await self._call("warm_transfer", wire.CALL_WARM_TRANSFER, params, body)

    async def merge(self, call_id: str, refer_id: str) -> None:
        params, body = {"call_id": _checked_id(call_id, "call_id")}, wire.refer_body(_checked_id(refer_id, "refer_id"))
        await self._call("merge", wire.CALL_MERGE, params, body)

    # --- one operation ----------------------------------------------------------------------------------
    async def _gone_is_success(self, operation: str, route: wire.Route, params: dict[str, str]) -> None:
        try:
            await self._call(operation, route, params)
        except GoToConnectError as exc:
            if exc.status != 404:
                raise
            logger.info("GoTo %s: already gone", operation)

    async def _json(
        self, operation: str, route: wire.Route, params: dict[str, str], body: Any, *, query: dict | None = None
    ) -> Any:
        response = await self._call(operation, route, params, body, query=query)
        parsed = _json_or_none(response)
        if parsed is None:
            raise _bad_response(operation, "a body that is not JSON")
        return parsed

    def _url(self, route: wire.Route, params: dict[str, str]) -> str:
        base = self.config.web_calls_base_url if route.api == wire.API_WEB_CALLS else self.config.api_base_url
        return base.rstrip("/") + route.path(**params)

    async def _call(
        self,
        operation: str,
        route: wire.Route,
        params: dict[str, str],
        body: Any = None,
        *,
        query: dict | None = None,
    ) -> httpx.Response:
        url, started = self._url(route, params), time.perf_counter()
        try:
            response: httpx.Response = await self._retrying(operation)(
                self._attempt, operation, route, url, body, query
            )
        except httpx.TimeoutException as exc:
            raise _transport_error(operation, "timed out", "pbx_timeout", 504, exc) from exc
        except httpx.HTTPError as exc:
            raise _transport_error(operation, "could not be reached", "pbx_unreachable", 502, exc) from exc
        finally:
            metrics.pbx_request_duration_seconds.labels(operation).observe(time.perf_counter() - started)
        return self._checked(operation, response)

    def _retrying(self, operation: str) -> AsyncRetrying:
        policy, safe = self.retry_policy, operation in IDEMPOTENT

        def should_retry(state: RetryCallState) -> bool:
            last = outcome_of(state)
            if last.failed:
                error = last.exception()
                return isinstance(error, NOT_SENT_ERRORS) or (safe and isinstance(error, httpx.TransportError))
            status = last.result().status_code
            return status == 429 or (safe and status in RETRYABLE_STATUSES)

        return AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=lambda state: backoff(policy, state.attempt_number, self.rand, "full"),
            retry=should_retry,
            sleep=self.sleep,
            before_sleep=lambda state: metrics.pbx_retries_total.labels(operation).inc(),
            retry_error_callback=lambda state: outcome_of(state).result(),  # the last response, or raise its error
            reraise=True,
        )

    async def _attempt(
        self, operation: str, route: wire.Route, url: str, body: Any, query: dict | None
    ) -> httpx.Response:
        response, token = await self._send(operation, route, url, body, query)
        if response.status_code == 401:
            logger.info("GoTo refused the access token on %s; fetching a new one", operation)
            self.tokens.invalidate(token)
            response, _ = await self._send(operation, route, url, body, query)
        return response

    async def _send(
        self, operation: str, route: wire.Route, url: str, body: Any, query: dict | None
    ) -> tuple[httpx.Response, str]:
        token = await self.tokens.token()
        await self._take_rate_token(operation, route.api)
        headers = {"Authorization": f"{wire.AUTH_SCHEME} {token}", "Accept": "application/json"}
        try:
            response = await self._http.request(route.method, url, json=body, params=query, headers=headers)
        except httpx.TimeoutException:
            metrics.pbx_requests_total.labels(operation, "timeout").inc()
            raise
        except httpx.HTTPError:
            metrics.pbx_requests_total.labels(operation, "connection_error").inc()
            raise
        metrics.pbx_requests_total.labels(operation, _outcome(response.status_code)).inc()
        return response, token

    async def _take_rate_token(self, operation: str, api: str) -> None:
        bucket = self.buckets[api]
        try:
            refused = await acquire(self.limiter, [bucket], self.sleep)
        except redis.RedisError:
            # Redis is down: limit this process alone; GoTo's own 429 stays the backstop.
            logger.warning("GoTo rate limit taken in process: Redis failed", exc_info=True)
            refused = await acquire(LOCAL_LIMITER, [bucket], self.sleep)
        if refused is not None:
            metrics.pbx_requests_total.labels(operation, "throttled").inc()
            raise GoToConnectError(
                f"GoTo {operation} refused locally: more than {MAX_QUEUE_SECONDS:.0f} s of {api} requests are "
                f"already queued under the limit of {self.config.rate_limit_per_second} a second.",
                code="pbx_rate_limited",
                retryable=True,
                status_code=503,
            )

    def _checked(self, operation: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 300:
            return response
        code, detail = wire.error_detail(_json_or_none(response))
        detail = self._scrub(f"{code}: {detail}" if code else detail)[:ERROR_MESSAGE_CHARS]
        message = f"GoTo {operation} failed: HTTP {status}" + (f" ({detail})." if detail else ".")
        if status == 404:
            raise GoToConnectError(message, code="pbx_call_not_found", status=status, status_code=404)
        logger.warning("%s", message)
        if status == 401:
            raise GoToConnectError(message, code="pbx_unauthorized", status=status)
        if status == 429:
            raise GoToConnectError(message, code="pbx_rate_limited", status=status, retryable=True)
        if status >= 500:
            raise GoToConnectError(message, code="pbx_unavailable", status=status, retryable=True)
        raise GoToConnectError(message, code="pbx_request_rejected", status=status)

    def _scrub(self, text: str) -> str:
        """An error text from GoTo with our access token masked, should it echo it."""
        secret = self.tokens.last_token
        return text.replace(secret, "[REDACTED]") if secret else text


def _bad_response(operation: str, what: str) -> GoToConnectError:
    return GoToConnectError(f"GoTo {operation} answered with {what}.", code="pbx_bad_response", retryable=False)


def _transport_error(operation: str, what: str, code: str, status_code: int, exc: Exception) -> GoToConnectError:
    logger.warning("GoTo %s %s (%s)", operation, what, type(exc).__name__)
    return GoToConnectError(
        f"GoTo {operation} {what} ({type(exc).__name__}).", code=code, retryable=True, status_code=status_code
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status == 401:
        return "unauthorized"
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "client_error"
