"""The outbox: delivery rows written with the change that caused them, and the claims that hand them out.

A pending row is due when `next_attempt_at` has passed. Whoever attempts it first claims it with one
conditional UPDATE that pushes `next_attempt_at` past the attempt's longest duration (the lease), so
two workers never send the same delivery at once, and a worker killed mid-attempt only delays it by
the lease. Queuing a task claims the row too (`dispatch_token`, a shorter lease) so the sweeper does
not queue it again while the message waits; a lost message is queued again once the lease expires.
"""

import json
import logging
import uuid
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks.catalog import EVENT_TYPES
from integrations.webhooks.signing import new_message_id

logger = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 2
SWEEP_BATCH = 500


def attempt_lease() -> timedelta:
    """How long a claimed delivery is left alone: longer than any attempt, so only a dead worker's expires."""
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 1.5 + LEASE_MARGIN_SECONDS)


def dispatch_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_DISPATCH_LEASE_SECONDS)


def broker_available() -> bool:
    """Without a broker (embedded defaults) tasks would run inline: the sweeper sends instead."""
    return not current_app.conf.task_always_eager


def render_body(event_type: str, data: dict, occurred_at: datetime) -> str:
    """The JSON body, once: every attempt sends (and signs) exactly these characters (ASCII only)."""
    event = {"type": event_type, "timestamp": occurred_at, "data": data}
    return json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=True)


def webhook_emit(*, tenant_id, event_type: str, data: dict, occurred_at: datetime | None = None) -> list:
    """Store the event for every enabled endpoint of the tenant that subscribes to it; send after commit.

    Call it inside the transaction of the change the event reports: the rows commit or vanish with it.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type!r} is not in the webhook event catalog")
    endpoints = WebhookEndpoint.objects.for_tenant(tenant_id).filter(enabled=True).only("pk", "event_types")
    endpoints = [endpoint for endpoint in endpoints if endpoint.subscribes_to(event_type)]
    if not endpoints:
        return []
    now = timezone.now()
    body = render_body(event_type, data, occurred_at or now)
    queued = broker_available()
    token = uuid.uuid4() if queued else None
    message_id = new_message_id()
    rows = [
        WebhookDelivery(
            tenant_id=tenant_id,
            endpoint=endpoint,
            message_id=message_id,
            event_type=event_type,
            body=body,
            next_attempt_at=now + dispatch_lease() if queued else now,
            dispatch_token=token,
        )
        for endpoint in endpoints
    ]
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(rows)
    if queued:
        ids = [row.pk for row in rows]
        transaction.on_commit(lambda: enqueue(ids, token), robust=True)
    return rows


def enqueue(delivery_ids, token) -> None:
    """Queue one attempt task per delivery; a failure is only logged: the sweeper queues it after the lease."""
    from integrations.tasks import webhook_deliver  # tasks import this module

    for delivery_id in delivery_ids:
        try:
            webhook_deliver.apply_async(kwargs={"delivery_id": str(delivery_id), "token": str(token)})
        except Exception:  # broker down: the row is stored, the sweeper will queue it
            logger.warning("could not queue webhook delivery %s; the sweeper will", delivery_id, exc_info=True)


def deliveries_claim_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> tuple[list, uuid.UUID]:
    """Claim due pending deliveries for queuing: (their ids, the token their tasks must present)."""
    now = now or timezone.now()
    pending = WebhookDelivery.objects.dangerously_unscoped().filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    )
    ids = list(pending.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    token = uuid.uuid4()
    pending.filter(pk__in=ids).update(dispatch_token=token, next_attempt_at=now + dispatch_lease())
    claimed = WebhookDelivery.objects.dangerously_unscoped().filter(pk__in=ids, dispatch_token=token)
    return list(claimed.values_list("pk", flat=True)), token


def deliveries_claim(*, delivery_id=None, token=None, limit: int = 1, now: datetime | None = None) -> list:
    """Take pending deliveries for one attempt each: the given one if it is due (or queued with `token`), and
    others that are due or wait in the queue, `limit` in all; their own tasks then find nothing to do.

    One UPDATE claims them all (its conditions are checked again on each locked row, so two workers never
    take the same delivery) and pushes `next_attempt_at` past the attempt's lease.
    """
    now = now or timezone.now()
    pending = WebhookDelivery.objects.dangerously_unscoped().filter(status=WebhookDelivery.Status.PENDING)
    waiting = Q(next_attempt_at__lte=now) | Q(dispatch_token__isnull=False)
    ready = (Q(next_attempt_at__lte=now) | Q(dispatch_token=token)) if token else Q(next_attempt_at__lte=now)
    mine = (Q(pk=delivery_id) & ready) if delivery_id else Q(pk__in=[])
    room = limit - 1 if delivery_id else limit
    others = list(
        pending.filter(waiting).exclude(pk=delivery_id).order_by("next_attempt_at").values_list("pk", flat=True)[:room]
    )
    batch = uuid.uuid4()
    claimed = pending.filter(mine | (Q(pk__in=others) & waiting)).update(
        claim_token=batch,
        dispatch_token=None,
        next_attempt_at=now + attempt_lease(),
        attempts=F("attempts") + 1,
        cycle_attempts=F("cycle_attempts") + 1,
    )
    if not claimed:
        return []
    return list(WebhookDelivery.objects.dangerously_unscoped().filter(claim_token=batch).select_related("endpoint"))


def delivery_claim(*, delivery_id, token=None, now: datetime | None = None) -> WebhookDelivery | None:
    """Take one delivery for an attempt if it is due (or queued with `token`); None if someone else has it."""
    claimed = deliveries_claim(delivery_id=delivery_id, token=token, limit=1, now=now)
    return claimed[0] if claimed else None
