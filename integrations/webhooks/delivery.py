"""Delivery attempts: claim a batch, sign, send concurrently through the gateway, record, schedule what is next.

A task attempts its own delivery and takes up to WEBHOOK_DELIVERY_BATCH - 1 others that are due or
wait in the queue, so a backlog drains in batches (one claim, one round of concurrent requests, one
transaction of records) while an idle system still sends each event as soon as it commits.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations import vault
from integrations.config import BreakerPolicy, RetryPolicy, ServiceConfig
from integrations.gateway import (
    GatewayConfigError,
    GatewayError,
    GatewayHTTPError,
    GatewayRateLimited,
    GatewayTimeout,
    GatewayUnavailable,
)
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks import outbox, sender, services, signing

logger = logging.getLogger(__name__)

Outcome = WebhookAttempt.Outcome
Status = WebhookDelivery.Status
EXCERPT_CHARS = 1000
ERROR_CHARS = 500
SUCCESS_REFRESH = timedelta(minutes=1)  # how stale last_success_at may get: saves an UPDATE per delivery


@dataclass
class AttemptResult:
    outcome: str
    started_at: datetime
    duration_ms: int = 0
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    deferred: bool = False  # not sent (breaker open): no attempt is counted


def retry_delay(retry_number: int, rand=random.random) -> float:
    """Seconds before retry `retry_number` (1-based): geometric from the base to the maximum, +0-25% jitter.

    With the default policy (5 retries, 60 s to 3,600 s): about 60, 167, 465, 1,293 and 3,600 s.
    """
    policy = settings.WORKER_RETRY
    base, top, retries = policy["backoff_base_seconds"], policy["backoff_max_seconds"], policy["max_retries"]
    step = (retry_number - 1) / (retries - 1) if retries > 1 else 0
    delay = base * (top / base) ** min(step, 1.0) if base > 0 else top
    return min(top, delay * (1 + 0.25 * rand()))


def service_for(endpoint: WebhookEndpoint) -> ServiceConfig:
    """The gateway service of one endpoint: no gateway retry (the outbox retries), its own breaker."""
    return ServiceConfig(
        name=f"webhook-{endpoint.pk}",
        url=endpoint.url,
        method="POST",
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        retry=RetryPolicy(max_attempts=1),
        circuit_breaker=BreakerPolicy(
            threshold=settings.WEBHOOK_BREAKER_THRESHOLD, timeout=settings.WEBHOOK_BREAKER_TIMEOUT_SECONDS
        ),
    )


def webhook_deliver(*, delivery_id, token=None) -> str | None:
    """Attempt a delivery if it is pending and due (or queued with `token`), with others that wait.

    Returns the delivery's status afterwards, or None when there was nothing to do for it (delivered,
    failed, not due yet, or taken by another worker).
    """
    batch = outbox.deliveries_claim(delivery_id=delivery_id, token=token, limit=settings.WEBHOOK_DELIVERY_BATCH)
    return deliver_batch(batch).get(uuid.UUID(str(delivery_id)))


def webhooks_dispatch_due(*, inline: bool | None = None, limit: int = outbox.SWEEP_BATCH) -> int:
    """Queue every due delivery (or, without a broker, attempt them here); returns how many were due."""
    inline = not outbox.broker_available() if inline is None else inline
    if not inline:
        ids, token = outbox.deliveries_claim_due(limit=limit)
        outbox.enqueue(ids, token)
        return len(ids)
    attempted = 0
    while attempted < limit and (batch := outbox.deliveries_claim(limit=settings.WEBHOOK_DELIVERY_BATCH)):
        deliver_batch(batch)
        attempted += len(batch)
    return attempted


def deliver_batch(batch: list[WebhookDelivery]) -> dict:
    """Attempt claimed deliveries concurrently and record every outcome; {delivery id: status}."""
    closed = [d for d in batch if not d.endpoint.enabled]
    for delivery in closed:  # disabled since it was queued: failed, replayable once enabled again
        _update(delivery, status=Status.FAILED, next_attempt_at=None, claim_token=None, last_error="endpoint disabled")
    live = [d for d in batch if d.endpoint.enabled]
    statuses = record(list(zip(live, attempt_many(live), strict=True))) if live else {}
    return {**statuses, **{d.pk: Status.FAILED for d in closed}}


# --- attempts -----------------------------------------------------------------------------------


def _request(delivery: WebhookDelivery) -> dict:
    """The gateway call of one attempt: the stored body, signed now with every valid secret."""
    headers = signing.headers(
        services.endpoint_secrets(delivery.endpoint),
        message_id=delivery.message_id,
        timestamp=int(time.time()),
        body=delivery.body,
    )
    return {"tenant_id": delivery.tenant_id, "content": delivery.body.encode(), "headers": headers}


def attempt_many(deliveries: list[WebhookDelivery]) -> list[AttemptResult]:
    """Sign and send each delivery once, all at the same time; never raises for what endpoints did."""
    results: dict[int, AttemptResult] = {}
    requests, positions = [], []
    for position, delivery in enumerate(deliveries):
        try:
            requests.append((service_for(delivery.endpoint), _request(delivery)))
            positions.append(position)
        except vault.VaultError as exc:  # its secret cannot be read: nothing is sent
            results[position] = _failure(AttemptResult(Outcome.REFUSED, timezone.now()), exc)
    for position, sent in zip(
        positions, sender.send_many(requests, deadline=settings.WEBHOOK_TIMEOUT_SECONDS), strict=True
    ):
        results[position] = _result(sent)
    return [results[position] for position in range(len(deliveries))]


def _result(sent: sender.Sent) -> AttemptResult:
    result = AttemptResult(Outcome.SUCCEEDED, sent.started_at, duration_ms=round(sent.seconds * 1000))
    if isinstance(sent.outcome, GatewayUnavailable):
        result.deferred = True
    elif isinstance(sent.outcome, BaseException):
        _failure(result, sent.outcome)
    else:
        result.status_code, result.excerpt = sent.outcome.status_code, sent.outcome.text[:EXCERPT_CHARS]
        if not 200 <= sent.outcome.status_code < 300:
            result.outcome, result.error = Outcome.HTTP_ERROR, f"HTTP {sent.outcome.status_code} is not a 2xx answer"
    return result


def _failure(result: AttemptResult, exc: BaseException) -> AttemptResult:
    if isinstance(exc, GatewayHTTPError):
        result.status_code, result.excerpt = exc.status, exc.body[:EXCERPT_CHARS]
        result.outcome = Outcome.GONE if exc.status == 410 else Outcome.HTTP_ERROR
    elif isinstance(exc, GatewayTimeout | TimeoutError):
        result.outcome = Outcome.TIMEOUT
    elif isinstance(exc, GatewayConfigError | GatewayRateLimited | vault.VaultError):
        result.outcome = Outcome.REFUSED
    else:
        if not isinstance(exc, GatewayError):
            logger.error("webhook attempt failed unexpectedly", exc_info=exc)
        result.outcome = Outcome.CONNECTION_ERROR
    message = getattr(exc, "message", "") or str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError) and not isinstance(exc, GatewayError):
        message = f"No complete answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g}s."
    result.error = message[:ERROR_CHARS]
    return result


# --- recording ----------------------------------------------------------------------------------


@transaction.atomic
def record(pairs: list[tuple[WebhookDelivery, AttemptResult]]) -> dict:
    """Store the attempts and decide for each delivery: delivered, retried later, or failed for good."""
    # Locked until commit: an endpoint deleted during the attempts took its deliveries along, and may not now.
    rows = WebhookDelivery.objects.dangerously_unscoped().select_for_update().filter(pk__in=[d.pk for d, _ in pairs])
    alive = set(rows.order_by("pk").values_list("pk", flat=True))
    pairs = [(d, r) for d, r in pairs if d.pk in alive]
    attempted = [(d, r) for d, r in pairs if not r.deferred]
    WebhookAttempt.objects.bulk_create([_attempt_row(d, r) for d, r in attempted])
    delivered = [(d, r) for d, r in attempted if r.outcome == Outcome.SUCCEEDED]
    _succeeded(delivered)
    statuses = {d.pk: Status.SUCCEEDED for d, _ in delivered}
    for delivery, result in pairs:
        if result.deferred:
            statuses[delivery.pk] = _defer(delivery)
        elif result.outcome != Outcome.SUCCEEDED:
            statuses[delivery.pk] = _failed(delivery, result)
    return statuses


def _attempt_row(delivery: WebhookDelivery, result: AttemptResult) -> WebhookAttempt:
    return WebhookAttempt(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        number=delivery.attempts,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        outcome=result.outcome,
        status_code=result.status_code,
        error=result.error,
        response_excerpt=result.excerpt,
    )


def _update(delivery: WebhookDelivery, **fields) -> None:
    WebhookDelivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk).update(
        **fields, updated_at=timezone.now()
    )


def _succeeded(delivered: list[tuple[WebhookDelivery, AttemptResult]]) -> None:
    """One UPDATE per status code (almost always one), then the endpoints' health."""
    now = timezone.now()
    by_code: dict[int, list] = {}
    for delivery, result in delivered:
        by_code.setdefault(result.status_code, []).append(delivery.pk)
    for code, ids in by_code.items():
        WebhookDelivery.objects.dangerously_unscoped().filter(pk__in=ids).update(
            status=Status.SUCCEEDED,
            next_attempt_at=None,
            claim_token=None,
            delivered_at=now,
            last_attempt_at=now,
            last_status_code=code,
            last_error="",
            updated_at=now,
        )
    endpoints = {d.endpoint_id: d.endpoint for d, _ in delivered}.values()
    stale = [
        e.pk for e in endpoints if e.failing_since or not e.last_success_at or e.last_success_at < now - SUCCESS_REFRESH
    ]
    if stale:
        WebhookEndpoint.objects.dangerously_unscoped().filter(pk__in=stale).update(
            failing_since=None, last_success_at=now
        )


def _defer(delivery: WebhookDelivery) -> str:
    # The breaker is open: nothing was sent, so the attempt is given back and tried after a backoff.
    wait = retry_delay(max(delivery.cycle_attempts - 1, 1))
    _update(
        delivery,
        attempts=F("attempts") - 1,
        cycle_attempts=F("cycle_attempts") - 1,
        claim_token=None,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
    )
    return Status.PENDING


def _failed(delivery: WebhookDelivery, result: AttemptResult) -> str:
    gone = result.outcome == Outcome.GONE
    exhausted = gone or delivery.cycle_attempts > settings.WORKER_RETRY["max_retries"]
    next_at = None if exhausted else timezone.now() + timedelta(seconds=retry_delay(delivery.cycle_attempts))
    _update(
        delivery,
        status=Status.FAILED if exhausted else Status.PENDING,
        next_attempt_at=next_at,
        claim_token=None,
        last_attempt_at=result.started_at,
        last_status_code=result.status_code,
        last_error=result.error,
    )
    if gone:
        services.webhook_endpoint_disable(
            endpoint=delivery.endpoint, reason=WebhookEndpoint.DisabledReason.GONE, notify=True
        )
    else:
        _note_endpoint_failure(delivery.endpoint)
    return Status.FAILED if exhausted else Status.PENDING


def _note_endpoint_failure(endpoint: WebhookEndpoint) -> None:
    """Start the endpoint's failure clock; once it has run for a day without a success, disable it."""
    now = timezone.now()
    WebhookEndpoint.objects.for_tenant(endpoint.tenant_id).filter(Q(failing_since__isnull=True), pk=endpoint.pk).update(
        failing_since=now
    )
    since = endpoint.failing_since or now
    if since <= now - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        services.webhook_endpoint_disable(endpoint=endpoint, reason=WebhookEndpoint.DisabledReason.FAILING, notify=True)
