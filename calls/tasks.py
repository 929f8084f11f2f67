"""Scheduled call housekeeping (seed 3.4.4)."""

import logging

from celery import shared_task

from calls import services
from calls.models import Call
from voiceapp.logging import call_id_var, tenant_id_var

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def cleanup_sessions() -> int:
    """Weekly: close calls whose session died without ending them."""
    return services.calls_end_stale()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def call_initiate(call_id: str, tenant_id: str) -> str | None:
    """Dial an outbound call created by the API (idempotent: only a call still `initial` is dialled)."""
    tenant_id_var.set(tenant_id)
    call_id_var.set(call_id)
    call = Call.objects.filter(pk=call_id, tenant_id=tenant_id).select_related("agent", "tenant").first()
    if call is None:
        logger.warning("call_initiate: call %s of tenant %s is gone", call_id, tenant_id)
        return None
    return services.call_initiate(call=call).status
