"""Writes for webhook endpoints and deliveries: create, change, rotate the secret, disable, replay."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError, Conflict
from integrations import vault
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.webhooks import outbox
from integrations.webhooks.catalog import ALL, EVENT_TYPES, TEST_EVENT
from integrations.webhooks.signing import generate_secret, new_message_id
from tenants.models import Membership, Tenant
from tenants.services import audit_log_record

logger = logging.getLogger(__name__)

EDITABLE = ("url", "description", "event_types", "enabled")


@dataclass(frozen=True)
class IssuedWebhookSecret:
    endpoint: WebhookEndpoint
    secret: str  # whsec_…, returned once and stored only sealed


# --- validation ---------------------------------------------------------------------------------


def _invalid(field: str, message: str, code: str) -> ApplicationError:
    return ApplicationError(f"{field}: {message}", code=code, fields={field: [message]})


def clean_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "Must be an http(s) URL.", "invalid_url")
    if settings.WEBHOOK_REQUIRE_HTTPS and parts.scheme != "https":
        raise _invalid("url", "Must be an https URL.", "https_required")
    return url


def clean_event_types(event_types) -> list[str]:
    if not isinstance(event_types, list) or not event_types:
        raise _invalid("event_types", "Choose at least one event type (or '*' for all).", "invalid_event_types")
    unknown = sorted({str(t) for t in event_types} - set(EVENT_TYPES) - {ALL})
    if unknown:
        raise _invalid("event_types", f"Unknown event types: {', '.join(unknown)}.", "invalid_event_types")
    return [ALL] if ALL in event_types else sorted(set(event_types))


# --- secrets ------------------------------------------------------------------------------------


def _bound_id(endpoint: WebhookEndpoint) -> str:
    return f"webhook:{endpoint.pk}"


def _seal(endpoint: WebhookEndpoint, secrets: dict) -> None:
    endpoint.secret_key_id, endpoint.secret_nonce, endpoint.secret_ciphertext = vault.encrypt(
        tenant_id=endpoint.tenant_id, credential_id=_bound_id(endpoint), secret=secrets
    )


def _sealed(endpoint: WebhookEndpoint) -> dict:
    return vault.open_sealed(
        key_id=endpoint.secret_key_id,
        nonce=endpoint.secret_nonce,
        ciphertext=endpoint.secret_ciphertext,
        tenant_id=endpoint.tenant_id,
        bound_id=_bound_id(endpoint),
        label=f"Webhook endpoint {endpoint.pk}",
    )


def endpoint_secrets(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets deliveries are signed with now: the current one, and the previous during the overlap."""
    sealed = _sealed(endpoint)
    expires = endpoint.previous_secret_expires_at
    keep_previous = sealed.get("previous") and expires and expires > (now or timezone.now())
    return [sealed["current"], sealed["previous"]] if keep_previous else [sealed["current"]]


# --- endpoints ----------------------------------------------------------------------------------


def _summary(endpoint: WebhookEndpoint) -> dict:
    return {"url": endpoint.url, "event_types": endpoint.event_types, "enabled": endpoint.enabled}


@transaction.atomic
def webhook_endpoint_create(
    *, tenant: Tenant, url: str, event_types, description: str = "", enabled: bool = True, actor: dict | None = None
) -> IssuedWebhookSecret:
    """Create an endpoint with a new signing secret, returned once."""
    endpoint = WebhookEndpoint(
        tenant=tenant,
        url=clean_url(url),
        event_types=clean_event_types(event_types),
        description=description,
        enabled=enabled,
        disabled_reason="" if enabled else WebhookEndpoint.DisabledReason.MANUAL,
        disabled_at=None if enabled else timezone.now(),
    )
    secret = generate_secret()
    _seal(endpoint, {"current": secret})
    endpoint.save(force_insert=True)
    audit_log_record(
        tenant=tenant, action="webhook_endpoint.create", obj=endpoint, changes=_summary(endpoint), **(actor or {})
    )
    return IssuedWebhookSecret(endpoint, secret)


def _locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint.objects.for_tenant(endpoint.tenant_id).select_for_update().get(pk=endpoint.pk)


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, actor: dict | None = None, **fields) -> WebhookEndpoint:
    """Change url, description, event types or enabled; enabling clears the failure record."""
    endpoint = _locked(endpoint)
    if "url" in fields:
        fields["url"] = clean_url(fields["url"])
    if "event_types" in fields:
        fields["event_types"] = clean_event_types(fields["event_types"])
    enable = fields.pop("enabled", None)
    for name in set(fields) & set(EDITABLE):
        setattr(endpoint, name, fields[name])
    endpoint.save()
    if enable is True and not endpoint.enabled:
        endpoint = _enable(endpoint)
    elif enable is False and endpoint.enabled:
        endpoint = webhook_endpoint_disable(endpoint=endpoint, reason=WebhookEndpoint.DisabledReason.MANUAL)
    changes = {"fields": sorted({*fields, *(["enabled"] if enable is not None else [])}), **_summary(endpoint)}
    audit_log_record(
        tenant=endpoint.tenant, action="webhook_endpoint.update", obj=endpoint, changes=changes, **(actor or {})
    )
    return endpoint


def _enable(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = True, "", None
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "failing_since", "updated_at"])
    return endpoint


@transaction.atomic
def webhook_endpoint_disable(
    *, endpoint: WebhookEndpoint, reason: str, actor: dict | None = None, notify: bool = False
) -> WebhookEndpoint:
    """Stop delivering to the endpoint; its pending deliveries fail (replayable once it is enabled again)."""
    endpoint = _locked(endpoint)
    if not endpoint.enabled:
        return endpoint
    now = timezone.now()
    endpoint.enabled, endpoint.disabled_reason, endpoint.disabled_at = False, reason, now
    endpoint.save(update_fields=["enabled", "disabled_reason", "disabled_at", "updated_at"])
    endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None, dispatch_token=None, last_error="endpoint disabled"
    )
    audit_log_record(
        tenant=endpoint.tenant,
        action="webhook_endpoint.disable",
        obj=endpoint,
        changes={"reason": reason, "url": endpoint.url},
        **(actor or {}),
    )
    if notify:
        transaction.on_commit(lambda: _notify_disabled(endpoint), robust=True)
    logger.warning("webhook endpoint %s of tenant %s disabled: %s", endpoint.pk, endpoint.tenant_id, reason)
    return endpoint


def _notify_disabled(endpoint: WebhookEndpoint) -> None:
    """Tell the tenant's owners and admins by email that the platform disabled their endpoint."""
    people = Membership.objects.for_tenant(endpoint.tenant_id).filter(
        role__in=[Membership.Role.OWNER, Membership.Role.ADMIN]
    )
    recipients = sorted({m.user.email for m in people.select_related("user") if m.user.email})
    if not recipients:
        return
    reason = WebhookEndpoint.DisabledReason(endpoint.disabled_reason).label
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint.url}",
        message=(
            f"We stopped sending events to {endpoint.url} ({reason.lower()}).\n\n"
            "Fix the endpoint, enable it again (PATCH /v1/webhooks/{id} with enabled=true) and replay what it "
            f"missed (POST /v1/webhooks/{endpoint.pk}/replay with a `since` time).\n"
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: dict | None = None) -> None:
    audit_log_record(
        tenant=endpoint.tenant,
        action="webhook_endpoint.delete",
        obj=endpoint,
        changes=_summary(endpoint),
        **(actor or {}),
    )
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, overlap_hours: int | None = None, actor: dict | None = None
) -> IssuedWebhookSecret:
    """A new signing secret, returned once; the old one keeps signing beside it for the overlap."""
    endpoint = _locked(endpoint)
    hours = settings.WEBHOOK_SECRET_OVERLAP_HOURS if overlap_hours is None else overlap_hours
    now = timezone.now()
    secret = generate_secret()
    _seal(endpoint, {"current": secret, "previous": _sealed(endpoint)["current"]})
    endpoint.secret_rotated_at = now
    endpoint.previous_secret_expires_at = now + timedelta(hours=hours)
    endpoint.save()
    changes = {"overlap_hours": hours, "previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()}
    audit_log_record(
        tenant=endpoint.tenant, action="webhook_endpoint.rotate_secret", obj=endpoint, changes=changes, **(actor or {})
    )
    return IssuedWebhookSecret(endpoint, secret)


def webhook_endpoints_reencrypt() -> tuple[int, list[str]]:
    """Re-seal every endpoint's secrets under the newest INTEGRATION_CRYPTO_KEY key: (count, failures)."""
    current = vault.keyring().current_id
    done, failed = 0, []
    # Across tenants on purpose: key rotation covers the whole vault.
    for pk in (
        WebhookEndpoint.objects.dangerously_unscoped().exclude(secret_key_id=current).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.dangerously_unscoped().select_for_update().get(pk=pk)
            try:
                _seal(endpoint, _sealed(endpoint))
            except vault.VaultError as exc:
                failed.append(exc.message)
                continue
            endpoint.save(update_fields=["secret_key_id", "secret_nonce", "secret_ciphertext", "updated_at"])
            done += 1
    return done, failed


# --- replay -------------------------------------------------------------------------------------


def _requeue(deliveries, *, tenant_id) -> int:
    """Make one tenant's deliveries pending again with a fresh retry cycle, due now; queued after commit."""
    now = timezone.now()
    queued = outbox.broker_available()
    token = uuid.uuid4() if queued else None
    ids = list(deliveries.values_list("pk", flat=True))
    WebhookDelivery.objects.for_tenant(tenant_id).filter(pk__in=ids).update(
        status=WebhookDelivery.Status.PENDING,
        cycle_attempts=0,
        next_attempt_at=now + outbox.dispatch_lease() if queued else now,
        dispatch_token=token,
        replayed_at=now,
    )
    if queued and ids:
        transaction.on_commit(lambda: outbox.enqueue(ids, token), robust=True)
    return len(ids)


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled: enable it first.", code="webhook_endpoint_disabled")


@transaction.atomic
def webhook_delivery_replay(*, delivery: WebhookDelivery, actor: dict | None = None) -> WebhookDelivery:
    """Send a delivery again (same webhook-id and body, a new retry cycle); refused while it is pending."""
    delivery = WebhookDelivery.objects.for_tenant(delivery.tenant_id).select_for_update().get(pk=delivery.pk)
    _require_enabled(delivery.endpoint)
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise Conflict("The delivery is already scheduled.", code="webhook_delivery_pending")
    _requeue(
        WebhookDelivery.objects.for_tenant(delivery.tenant_id).filter(pk=delivery.pk), tenant_id=delivery.tenant_id
    )
    audit_log_record(
        tenant=delivery.endpoint.tenant,
        action="webhook_delivery.replay",
        obj=delivery,
        changes={"message_id": delivery.message_id, "endpoint_id": str(delivery.endpoint_id)},
        **(actor or {}),
    )
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def webhook_deliveries_replay_failed(*, endpoint: WebhookEndpoint, since: datetime, actor: dict | None = None) -> int:
    """Send again every failed delivery of the endpoint created at or after `since`; returns how many."""
    endpoint = _locked(endpoint)
    _require_enabled(endpoint)
    failed = endpoint.deliveries.select_for_update().filter(status=WebhookDelivery.Status.FAILED, created_at__gte=since)
    count = _requeue(failed, tenant_id=endpoint.tenant_id)
    audit_log_record(
        tenant=endpoint.tenant,
        action="webhook_endpoint.replay",
        obj=endpoint,
        changes={"since": since.isoformat(), "replayed": count},
        **(actor or {}),
    )
    return count


@transaction.atomic
def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, actor: dict | None = None) -> WebhookDelivery:
    """Send one signed `webhook.test` event to this endpoint only, through the outbox like any event.

    It shows in the endpoint's delivery log and is retried on failure; a disabled endpoint is refused.
    """
    endpoint = _locked(endpoint)
    _require_enabled(endpoint)
    now = timezone.now()
    user = (actor or {}).get("actor_user")
    data = {
        "endpoint_id": str(endpoint.pk),
        "message": "This is a test event.",
        "sent_by": user.get_username() if user is not None else "",
    }
    queued = outbox.broker_available()
    token = uuid.uuid4() if queued else None
    delivery = WebhookDelivery.objects.create(
        tenant_id=endpoint.tenant_id,
        endpoint=endpoint,
        message_id=new_message_id(),
        event_type=TEST_EVENT,
        body=outbox.render_body(TEST_EVENT, data, now),
        next_attempt_at=now + outbox.dispatch_lease() if queued else now,
        dispatch_token=token,
    )
    if queued:
        transaction.on_commit(lambda: outbox.enqueue([delivery.pk], token), robust=True)
    audit_log_record(
        tenant=endpoint.tenant,
        action="webhook_endpoint.test",
        obj=endpoint,
        changes={"message_id": delivery.message_id},
        **(actor or {}),
    )
    return delivery
