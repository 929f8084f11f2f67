"""The GoToConnect call-control client: OAuth2 client credentials, REST call control, retries, rate limit.

    client = GoToConnectClient(GoToConfig.from_settings())
    call_id = await client.create_call(dial_string=dial_string("+15551234567"), caller_id="+15559876543")
    offer = await client.answer(inbound_call_id)
    await client.send_answer(inbound_call_id, answer_sdp)

One client per event loop (its HTTP and Redis connections belong to the loop that first used them).
Wire formats live in `telephony.carriers.goto.wire`; this module holds the behaviour around them:

- a token from `TokenProvider` (cached, refreshed before expiry, one fetch at a time); a 401 answer
  drops the token, fetches a new one and repeats the request once ("the token expired mid-call");
- GoToConnect's 1,000 requests/minute as a token bucket, shared by every process through Redis when
  REDIS_URL is set (the integration gateway's Lua bucket), in this process otherwise;
- retries with jittered exponential backoff that honour Retry-After (see `GoToConnectClient`);
- Prometheus metrics (`telephony.carriers.goto.metrics`) and log lines that never carry the token.
"""

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import redis
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, stop_any

from integrations.config import RetryPolicy
from integrations.gateway.ratelimit import Bucket, LocalRateLimiter, RedisRateLimiter, acquire
from integrations.gateway.retry import backoff, is_retryable, outcome_of, retry_after_seconds
from telephony.carriers.goto import legacy_wire as wire
from telephony.carriers.goto import metrics
from telephony.carriers.goto.auth import TokenProvider
from telephony.carriers.goto.config import (
    E164,
    ERROR_MESSAGE_CHARS,
    IDEMPOTENT,
    LOCAL_LIMITER,
    MAX_QUEUE_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    RETRY_POLICY,
    TOKENS,
    GoToConfig,
    GoToConnectError,
    _checked_id,
    _format_dial_string,
    _invalid,
    dial_string,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis as AsyncRedis

logger = logging.getLogger(__name__)

__all__ = [
    "LOCAL_LIMITER",
    "TOKENS",
    "GoToConfig",
    "GoToConnectClient",
    "GoToConnectError",
    "TokenProvider",
    "dial_string",
]


def rate_bucket(config: GoToConfig) -> Bucket:
    """The account's bucket: a small burst, refilled so that no 60 s window exceeds the per-minute limit."""
    per_minute = config.rate_limit_per_minute
    burst = max(1, per_minute // 20)
    rate = max(1, per_minute - burst) / 60.0
    return Bucket(
        key=f"goto:{config.account_key}:ratelimit",
        rate=rate,
        burst=burst,
        queue_depth=max(1, math.ceil(rate * MAX_QUEUE_SECONDS)),
    )


class GoToConnectClient:
    """Call control at GoToConnect. Every method raises GoToConnectError on failure.

    Retries (tenacity, jittered exponential backoff, a Retry-After header lengthens the wait):
    - a connection error raised before the request was sent (connect refused or timed out, no free
      connection) is retried for every operation: GoToConnect never saw it;
    - 429, 502, 503, 504, read/write timeouts and dropped connections are retried only for the
      idempotent operations (answer, send_answer, hold, resume, hangup), never for create_call,
      blind_transfer, warm_transfer or merge: the request may have reached the PBX, and repeating a dial
      or a transfer would ring someone twice;
    - a 429 whose Retry-After exceeds MAX_RETRY_AFTER_SECONDS is not waited out: the error carries
      `retry_after` instead.
    A 401 is not a retry: the token is dropped, a new one fetched and the request repeated once, for
    every operation (GoToConnect refused it unread).
    """

    def __init__(
        self,
        config: GoToConfig,
        *,
        tokens: TokenProvider | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: LocalRateLimiter | RedisRateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        retry_policy: RetryPolicy = RETRY_POLICY,
    ):
        self.config = config
        self.tokens = tokens or TokenProvider(config, transport=transport)
        self.sleep, self.rand, self.retry_policy = sleep, rand, retry_policy
        self.bucket = rate_bucket(config)
        self._redis: AsyncRedis | None = None
        self.limiter = limiter if limiter is not None else self._default_limiter()
        self._http = httpx.AsyncClient(
            base_url=config.api_base_url,
            transport=transport,
            timeout=config.timeout_seconds,
            headers={"Accept": "application/json"},
        )

    def _default_limiter(self) -> LocalRateLimiter | RedisRateLimiter:
        from django.conf import settings

        if not settings.REDIS_URL:
            return LOCAL_LIMITER
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        return RedisRateLimiter(self._redis)

    async def __aenter__(self) -> "GoToConnectClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    # --- operations ------------------------------------------------------------------------------------
    def dial_string(self, target: str) -> str:
        """How GoTo Connect dials a target (E.164 or ext:NNN): `Carrier.dial_string`."""
        return dial_string(target)

    async def create_call(self, *, dial_string: str, caller_id: str) -> str:
        """Place an outbound call (never retried once it may have been sent); returns GoToConnect's call id."""
        target = _format_dial_string(dial_string)
        if caller_id and not E164.match(caller_id):
            raise _invalid(f"caller_id {caller_id!r} is not an E.164 number.", "invalid_caller_id", "caller_id")
        response = await self._call("create_call", wire.CREATE_CALL, body=wire.create_call_body(target, caller_id))
        call_id = wire.created_call_id(self._json(response, "create_call"))
        if call_id is None:
            raise self._bad_response("create_call", "no call_id")
        return call_id

    async def answer(self, call_id: str) -> str:
        """Answer a ringing call; returns the PBX's SDP offer."""
        response = await self._call("answer", wire.ANSWER, call_id)
        offer = wire.offer_sdp(self._json(response, "answer"))
        if offer is None:
            raise self._bad_response("answer", "no SDP offer")
        return offer

    async def send_answer(self, call_id: str, sdp: str) -> None:
        """Give GoToConnect our SDP answer to its offer."""
        if not isinstance(sdp, str) or not sdp.strip():
            raise _invalid("The SDP answer is empty.", "invalid_sdp", "sdp")
        await self._call("send_answer", wire.SDP_ANSWER, call_id, body=wire.sdp_answer_body(sdp))

    async def hold(self, call_id: str) -> None:
        await self._call("hold", wire.HOLD, call_id)

    async def resume(self, call_id: str) -> None:
        await self._call("resume", wire.RESUME, call_id)

    async def blind_transfer(self, call_id: str, dial_string: str) -> None:
        target = _format_dial_string(dial_string)
        await self._call("blind_transfer", wire.BLIND_TRANSFER, call_id, body=wire.blind_transfer_body(target))

    async def warm_transfer(self, call_id: str, refer_id: str) -> None:
        """Connect the caller to the call `refer_id` (one we placed to the human) and drop out."""
        body = wire.refer_body(_checked_id(refer_id, "refer_id"))
        await self._call("warm_transfer", wire.WARM_TRANSFER, call_id, body=body)

    async def merge(self, call_id: str, refer_id: str) -> None:
        """Join the call `refer_id` into `call_id`: a three-way conference."""
        await self._call("merge", wire.MERGE, call_id, body=wire.refer_body(_checked_id(refer_id, "refer_id")))

    async def hangup(self, call_id: str) -> None:
        """End the call; a call GoToConnect no longer knows (404) is already hung up, which is success."""
        try:
            await self._call("hangup", wire.HANGUP, call_id)
        except GoToConnectError as exc:
            if exc.status != 404:
                raise
            logger.info("GoToConnect call %s was already gone at hangup", call_id)

    # --- one operation: retries around attempts --------------------------------------------------------
    async def _call(
        self, operation: str, endpoint: wire.Endpoint, call_id: str | None = None, *, body: Any = None
    ) -> httpx.Response:
        path = endpoint.path(_checked_id(call_id, "call_id")) if call_id is not None else endpoint.path()
        started = time.perf_counter()
        try:
            response: httpx.Response = await self._retrying(operation)(
                self._attempt, operation, endpoint.method, path, body
            )
        except httpx.TimeoutException as exc:
            raise self._transport_error(operation, "timed out", "pbx_timeout", 504, exc) from exc
        except httpx.HTTPError as exc:
            raise self._transport_error(operation, "could not be reached", "pbx_unreachable", 502, exc) from exc
        finally:
            metrics.pbx_request_duration_seconds.labels(operation).observe(time.perf_counter() - started)
        return self._checked(operation, response)

    def _retrying(self, operation: str) -> AsyncRetrying:
        policy, safe = self.retry_policy, operation in IDEMPOTENT

        def should_retry(state: RetryCallState) -> bool:
            last = outcome_of(state)
            outcome = last.exception() if last.failed else last.result()
            return is_retryable(outcome, policy, safe)

        def wait(state: RetryCallState) -> float:
            delay = backoff(policy, state.attempt_number, self.rand, "equal")
            last = outcome_of(state)
            hint = None if last.failed else retry_after_seconds(last.result())
            return max(delay, hint or 0.0)

        return AsyncRetrying(
            # tenacity's stop_any is annotated for stop_base only, but calls its stops as the plain
            # `(RetryCallState) -> bool` callables that its own `stop=` accepts.
            stop=stop_any(stop_after_attempt(policy.max_attempts), _retry_after_too_long),  # type: ignore[arg-type]
            wait=wait,
            retry=should_retry,
            sleep=self.sleep,
            before_sleep=lambda state: metrics.pbx_retries_total.labels(operation).inc(),
            retry_error_callback=lambda state: outcome_of(state).result(),  # the last response, or raise its error
            reraise=True,
        )

    async def _attempt(self, operation: str, method: str, path: str, body: Any) -> httpx.Response:
        response, token = await self._send(operation, method, path, body)
        if response.status_code in wire.AUTH_FAILURE_STATUSES:
            logger.info("GoToConnect refused the access token on %s; fetching a new one", operation)
            self.tokens.invalidate(token)
            response, _ = await self._send(operation, method, path, body)
        return response

    async def _send(self, operation: str, method: str, path: str, body: Any) -> tuple[httpx.Response, str]:
        token = await self.tokens.token()
        await self._take_rate_token(operation)
        headers = {"Authorization": f"{wire.AUTH_SCHEME} {token}"}
        try:
            response = await self._http.request(method, path, json=body, headers=headers)
        except httpx.TimeoutException:
            metrics.pbx_requests_total.labels(operation, "timeout").inc()
            raise
        except httpx.HTTPError:
            metrics.pbx_requests_total.labels(operation, "connection_error").inc()
            raise
        metrics.pbx_requests_total.labels(operation, _outcome(response.status_code)).inc()
        return response, token

    async def _take_rate_token(self, operation: str) -> None:
        try:
            refused = await acquire(self.limiter, [self.bucket], self.sleep)
        except redis.RedisError:
            # Redis is down: limit this process alone; GoToConnect's own 429 stays the backstop.
            logger.warning("GoToConnect rate limit taken in process: Redis failed", exc_info=True)
            refused = await acquire(LOCAL_LIMITER, [self.bucket], self.sleep)
        if refused is not None:
            metrics.pbx_requests_total.labels(operation, "throttled").inc()
            raise GoToConnectError(
                f"GoToConnect {operation} refused locally: more than {MAX_QUEUE_SECONDS:.0f} s of requests are "
                f"already queued under the limit of {self.config.rate_limit_per_minute} a minute.",
                code="pbx_rate_limited",
                retryable=True,
                status_code=503,
            )

    # --- answers -----------------------------------------------------------------------------------------
    def _checked(self, operation: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 300:
            return response
        code, detail = wire.error_detail(_json_or_none(response))
        detail = self._scrub(f"{code}: {detail}" if code else detail)[:ERROR_MESSAGE_CHARS]
        message = f"GoToConnect {operation} failed: HTTP {status}" + (f" ({detail})." if detail else ".")
        if status == 404:
            raise GoToConnectError(message, code="pbx_call_not_found", status=status, status_code=404)
        logger.warning("%s", message)
        if status == 401:
            raise GoToConnectError(message, code="pbx_unauthorized", status=status)
        if status == 429:
            retry_after = retry_after_seconds(response)
            raise GoToConnectError(
                message, code="pbx_rate_limited", status=status, retryable=True, retry_after=retry_after
            )
        if status >= 500:
            raise GoToConnectError(message, code="pbx_unavailable", status=status, retryable=True)
        raise GoToConnectError(message, code="pbx_request_rejected", status=status)

    def _scrub(self, text: str) -> str:
        """An error text from the PBX, with our tokens and secret masked should it echo them."""
        for secret in (self.tokens.last_token, self.config.client_secret):
            if secret:
                text = text.replace(secret, "[REDACTED]")
        return text

    def _json(self, response: httpx.Response, operation: str) -> Any:
        body = _json_or_none(response)
        if body is None:
            raise self._bad_response(operation, "a body that is not JSON")
        return body

    @staticmethod
    def _bad_response(operation: str, what: str) -> GoToConnectError:
        return GoToConnectError(
            f"GoToConnect {operation} answered with {what}.", code="pbx_bad_response", retryable=False
        )

    @staticmethod
    def _transport_error(operation: str, what: str, code: str, status_code: int, exc: Exception) -> GoToConnectError:
        logger.warning("GoToConnect %s %s (%s)", operation, what, type(exc).__name__)
        return GoToConnectError(
            f"GoToConnect {operation} {what} ({type(exc).__name__}).",
            code=code,
            retryable=True,
            status_code=status_code,
        )


def _retry_after_too_long(state: RetryCallState) -> bool:
    last = outcome_of(state)
    if last.failed:
        return False
    hint = retry_after_seconds(last.result())
    return hint is not None and hint > MAX_RETRY_AFTER_SECONDS


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
