"""Call tasks: dialling, post-call processing and the sweeps (their times: voiceapp/schedules.py)."""

import logging

from celery import shared_task

from calls import postcall, services
from calls.models import Call
from core.logging import call_id_var, tenant_id_var

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def cleanup_sessions() -> int:
    """Every minute: end calls stuck in setup or left open past their maximum duration (a session died)."""
    return services.calls_end_stuck()


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


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dial_due_calls() -> int:
    """Every minute: queue again the dial of outbound calls whose task was lost; end those too late to dial."""
    services.calls_abandon_undialled()
    claimed = services.calls_claim_due_dials()
    for call_id, tenant_id in claimed:
        services.dial_enqueue(call_id=call_id, tenant_id=tenant_id)
    return len(claimed)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_transcript(call_id: str, tenant_id: str) -> bool:
    """After call.ended: final transcript, talk-time statistics and analysis (idempotent: once per call)."""
    tenant_id_var.set(tenant_id)
    call_id_var.set(call_id)
    call = Call.objects.filter(pk=call_id, tenant_id=tenant_id).select_related("agent", "tenant").first()
    if call is None:
        logger.warning("process_transcript: call %s of tenant %s is gone", call_id, tenant_id)
        return False
    return postcall.call_process_transcript(call=call).processed_at is not None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def process_missed_transcripts() -> int:
    """Every 10 minutes: process ended calls whose processing task was lost."""
    missed = list(postcall.calls_missing_processing().values_list("pk", "tenant_id")[:500])
    for call_id, tenant_id in missed:
        process_transcript.delay(call_id=str(call_id), tenant_id=str(tenant_id))
    return len(missed)
