"""Embedding a knowledge document after it is saved: claimed, embedded in batches with progress, retried.

The document row is the record of the work (docs/knowledge.md#embedding): saving new text cuts it into
chunks at once (searchable by their words from then on) and leaves the document `pending`; whoever runs
`document_embed` first claims it with one conditional UPDATE (`processing`, a token, a lease), embeds the
chunks that have no vector of the current model yet, a batch at a time, writing the progress with each
batch, and marks it `ready`. Every write is conditional on the token, so a document whose text changed
meanwhile (a new token, new chunks) is left to the run that its change queued.

A failure of the embedding engine (not installed, cannot load, out of memory) is transient: the document
goes back to `pending` with a retry time, WORKER_RETRY's backoff, and after the last retry to `failed`
with the reason and a retry time an hour later, so a document saved while the engine was down is
embedded once it is back, never lost. Any other error fails the document with its reason and is not
retried until someone asks (`knowledge_document_retry`) or changes the text. The sweep
(`documents_dispatch_due`) queues what is due: retries, and work whose task or worker was lost.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.knowledge import chunking
from agents.knowledge.store import store
from agents.models import KnowledgeDocument

log = logging.getLogger(__name__)

Status = KnowledgeDocument.Status
BATCH = 8  # chunks embedded between two progress writes (about two seconds on one core)
LEASE = timedelta(minutes=5)  # a claimed document is left alone this long: far longer than one batch
BUDGET_SECONDS = 120.0  # one run's share: a large document continues in a fresh run, under the task time limit
SWEEP_BATCH = 100


class Superseded(Exception):
    """The document changed (or was taken over) since this run claimed it."""


def content_hash(title: str, content: str) -> str:
    """What the stored chunks were cut from (their passages are embedded with the title)."""
    return hashlib.sha256(f"{title}\x00{content}".encode("utf-8", "surrogatepass")).hexdigest()


def passage_text(title: str, section: str, text: str) -> str:
    """What is embedded for a chunk: the text under its document's title and section."""
    heading = f"{title} › {section}" if section else title
    return f"{heading}: {text}" if heading else text


# --- saving -----------------------------------------------------------------------------------------


def document_index(document: KnowledgeDocument) -> bool:
    """Cut the document into chunks if its text changed since they were cut, and queue its embedding after
    commit; returns whether it did. Call it inside the transaction that saved the document."""
    digest = content_hash(document.title, document.content)
    if digest == document.chunks_hash and document.status != Status.FAILED:
        return False
    drafts = chunking.chunk(document.content)
    store().replace(document, drafts)
    fields = {
        "status": Status.PENDING,
        "chunks_total": len(drafts),
        "chunks_embedded": 0,
        "error": "",
        "embed_attempts": 0,
        "embed_next_at": None,
        "embed_token": None,
        "chunks_hash": digest,
        "model_id": "",
    }
    fields["updated_at"] = timezone.now()
    KnowledgeDocument.objects.for_tenant(document.tenant_id).filter(pk=document.pk).update(**fields)
    for name, value in fields.items():
        setattr(document, name, value)
    tenant_id, document_id = str(document.tenant_id), str(document.pk)
    transaction.on_commit(lambda: dispatch(tenant_id, document_id), robust=True)
    return True


def dispatch(tenant_id: str, document_id: str) -> None:
    """Queue the embedding: a Celery task with a broker, the process's background runner without one."""
    from integrations.webhooks.outbox import broker_available

    if broker_available():
        from agents.tasks import knowledge_embed  # tasks import this module

        try:
            knowledge_embed.apply_async(kwargs={"tenant_id": tenant_id, "document_id": document_id})
        except Exception:  # broker down: the row is pending, the sweep queues it
            log.warning("could not queue the embedding of document %s; the sweep will", document_id, exc_info=True)
        return
    from agents.knowledge import runner

    runner.submit(tenant_id, document_id)


# --- the run ----------------------------------------------------------------------------------------


def due(now: datetime) -> Q:
    """Documents whose embedding may start: pending and due, a lost run's lease over, a failure's retry due."""
    waiting = Q(embed_next_at__isnull=True) | Q(embed_next_at__lte=now)
    return (
        Q(status=Status.PENDING) & waiting
        | Q(status__in=[Status.PROCESSING, Status.FAILED], embed_next_at__lte=now)
        | (Q(status=Status.READY) & ~Q(model_id=_model_id()))
    )


def _model_id() -> str:
    from core.embeddings import MODEL_ID

    return MODEL_ID


def document_embed(
    *, tenant_id, document_id, embedder=None, clock: Callable[[], float] = time.monotonic, now=timezone.now
) -> str:
    """Embed the tenant's document if it is due; returns what happened (ready, retry, failed, continued, skipped)."""
    token = uuid.uuid4()
    try:
        documents = KnowledgeDocument.objects.for_tenant(tenant_id).filter(pk=document_id)
        claimed = documents.filter(due(now())).update(
            status=Status.PROCESSING, embed_token=token, embed_next_at=now() + LEASE, updated_at=now()
        )
    except (ValidationError, ValueError):  # not a UUID: no document of ours
        claimed = 0
    if not claimed:
        log.info("knowledge embed: document %s is not due for tenant %s; nothing to do", document_id, tenant_id)
        return "skipped"
    document = documents.get()
    try:
        finished = _embed(document, token, embedder, clock, now)
    except Superseded:
        log.info("knowledge embed: document %s changed while embedding; its new run takes over", document_id)
        return "superseded"
    except (ImportError, OSError, RuntimeError, MemoryError) as exc:
        return _retry_later(document, token, exc, now())
    except Exception as exc:
        log.exception("knowledge embed: document %s failed", document_id)
        _settle(document, token, status=Status.FAILED, error=f"Embedding failed: {_reason(exc)}", embed_next_at=None)
        return "failed"
    if not finished:
        _settle(document, token, status=Status.PENDING, embed_next_at=None)
        transaction.on_commit(lambda: dispatch(str(tenant_id), str(document_id)), robust=True)
        return "continued"
    model_id = _model_id()
    done = _settle(
        document, token, status=Status.READY, error="", embed_next_at=None, embed_attempts=0, model_id=model_id
    )
    return "ready" if done else "superseded"


def _embed(document: KnowledgeDocument, token, embedder, clock, now) -> bool:
    """Embed the chunks still without a vector, batch by batch; False when the run's budget ran out first."""
    started, model_id = clock(), _model_id()
    if document.chunks_hash != content_hash(document.title, document.content):  # saved without the services
        drafts = chunking.chunk(document.content)
        with transaction.atomic():
            _progress(document, token, now, chunks_total=len(drafts), chunks_embedded=0)
            store().replace(document, drafts)
            _progress(document, token, now, chunks_hash=content_hash(document.title, document.content))
    if embedder is None:
        from core.embeddings import embedder as load

        embedder = load()
    total, done = store().counts(document, model_id=model_id)
    _progress(document, token, now, chunks_total=total, chunks_embedded=done)
    while batch := store().unembedded(document, model_id=model_id, limit=BATCH):
        if clock() - started > BUDGET_SECONDS:
            return False
        vectors = embedder.passages([passage_text(document.title, c.section, c.text) for c in batch])
        faq = [i for i, chunk in enumerate(batch) if chunk.question]
        questions = embedder.queries([batch[i].question for i in faq]) if faq else []
        with transaction.atomic():
            done = min(total, done + len(batch))
            _progress(document, token, now, chunks_embedded=done)
            store().write_vectors(batch, vectors, dict(zip(faq, questions, strict=True)), model_id=model_id)
    return True


def _progress(document: KnowledgeDocument, token, now, **fields) -> None:
    """Write progress if the run still holds the document (and extend its lease), else Superseded."""
    held = (
        KnowledgeDocument.objects.for_tenant(document.tenant_id)
        .filter(pk=document.pk, embed_token=token)
        .update(**fields, embed_next_at=now() + LEASE, updated_at=now())
    )
    if not held:
        raise Superseded
    for name, value in fields.items():
        setattr(document, name, value)


def _settle(document: KnowledgeDocument, token, **fields) -> bool:
    """End the run: write the outcome if the run still holds the document; whether it did."""
    fields.setdefault("embed_token", None)
    return bool(
        KnowledgeDocument.objects.for_tenant(document.tenant_id)
        .filter(pk=document.pk, embed_token=token)
        .update(**fields, updated_at=timezone.now())
    )


def _retry_later(document: KnowledgeDocument, token, exc: BaseException, now: datetime) -> str:
    policy = settings.WORKER_RETRY
    attempts = document.embed_attempts + 1
    last = attempts > policy["max_retries"]
    delay = policy["backoff_max_seconds"] if last else policy["backoff_base_seconds"] * 2 ** (attempts - 1)
    at = now + timedelta(seconds=min(delay, policy["backoff_max_seconds"]))
    when = f"Trying again at {at:%H:%M} UTC."
    log.warning("knowledge embed: document %s, attempt %d: %s", document.pk, attempts, _reason(exc))
    _settle(
        document,
        token,
        status=Status.FAILED if last else Status.PENDING,
        error=f"{_reason(exc)} {when}",
        embed_attempts=attempts,
        embed_next_at=at,
    )
    return "failed" if last else "retry"


def _reason(exc: BaseException) -> str:
    """Why, in words a tenant can read (the traceback is in the log)."""
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ImportError):
        return "The embedding engine is not installed on this server."
    if isinstance(exc, MemoryError):
        return "The server ran out of memory while embedding."
    if isinstance(exc, OSError | RuntimeError):
        return f"The embedding engine is unavailable ({detail})."
    return f"{type(exc).__name__}: {detail}"


# --- the sweep --------------------------------------------------------------------------------------


def documents_dispatch_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Queue every tenant's documents whose embedding is due (retries, lost runs); returns how many."""
    rows = list(
        KnowledgeDocument.objects.dangerously_unscoped()
        .filter(due(now or timezone.now()))
        .order_by("embed_next_at", "created_at")
        .values_list("tenant_id", "pk")[:limit]
    )
    for tenant_id, document_id in rows:
        dispatch(str(tenant_id), str(document_id))
    return len(rows)
