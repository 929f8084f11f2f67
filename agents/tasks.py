"""Knowledge-base tasks. Thin: each takes ids and calls one service (agents.knowledge.embedding).

Both are idempotent, so they ack late and are re-queued if their worker dies: a document is claimed
before it is embedded, and a task finding it ready, taken, not due, gone or another tenant's does nothing.
"""

from celery import shared_task

from agents.knowledge import embedding


@shared_task(acks_late=True, reject_on_worker_lost=True)
def knowledge_embed(tenant_id: str, document_id: str) -> str:
    """Embed one knowledge document of the tenant (its retries are scheduled on the row, not in the broker)."""
    return embedding.document_embed(tenant_id=tenant_id, document_id=document_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def knowledge_embed_due() -> int:
    """Every minute: queue the documents whose embedding is due (retries, lost tasks, a new model)."""
    return embedding.documents_dispatch_due()
