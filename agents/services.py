"""Writes for agents and voices; each is audited in its own transaction."""

import logging
from copy import deepcopy

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import chatterbox_voices
from agents.knowledge import embedding, fetch, formats
from agents.models import Agent, KnowledgeChunk, KnowledgeDocument, Voice
from core.errors import ApplicationError, Conflict
from tenants.models import Tenant
from tenants.services import audit_log_record

log = logging.getLogger(__name__)

AGENT_FIELDS = (
    "name",
    "description",
    "status",
    "voice",
    "system_prompt",
    "greeting_message",
    "voicemail_message",
    "tools",
    "settings",
    "transfer_targets",
)


def _name_taken() -> ApplicationError:
    return ApplicationError(
        "An agent with this name already exists.",
        code="agent_name_taken",
        fields={"name": ["An agent with this name already exists."]},
    )


def _check_voice(tenant: Tenant, voice: Voice | None) -> None:
    if voice is not None and voice.tenant_id not in (None, tenant.pk):
        raise ApplicationError("Unknown voice.", code="voice_not_found", fields={"voice_id": ["Unknown voice."]})


def _save_agent(agent: Agent) -> None:
    agent.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError as exc:
        raise _name_taken() from exc


@transaction.atomic
def agent_create(*, tenant: Tenant, actor: dict | None = None, **fields) -> Agent:
    """Create an agent for the tenant."""
    _check_voice(tenant, fields.get("voice"))
    agent = Agent(tenant=tenant, **{k: v for k, v in fields.items() if k in AGENT_FIELDS})
    _save_agent(agent)
    audit_log_record(tenant=tenant, action="agent.create", obj=agent, changes={"name": agent.name}, **(actor or {}))
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, actor: dict | None = None, **fields) -> Agent:
    """Change the given fields of an agent."""
    _check_voice(agent.tenant, fields.get("voice"))
    changed = sorted(name for name in fields if name in AGENT_FIELDS and getattr(agent, name) != fields[name])
    for name in changed:
        setattr(agent, name, fields[name])
    _save_agent(agent)
    if changed:
        audit_log_record(
            tenant=agent.tenant, action="agent.update", obj=agent, changes={"fields": changed}, **(actor or {})
        )
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent, actor: dict | None = None) -> Agent:
    """Soft-delete: hide the agent, keep its calls, and stop routing its numbers to it."""
    agent.deleted_at = timezone.now()
    agent.status = Agent.Status.PAUSED
    agent.save(update_fields=["deleted_at", "status", "updated_at"])
    released = agent.phone_numbers.filter(tenant=agent.tenant).update(agent=None)  # telephony's rows, by relation
    audit_log_record(
        tenant=agent.tenant, action="agent.delete", obj=agent, changes={"numbers_unassigned": released}, **(actor or {})
    )
    return agent


@transaction.atomic
def voice_create(*, tenant: Tenant, actor: dict | None = None, reference: ContentFile | None = None, **fields) -> Voice:
    """Create one of the tenant's own voices."""
    voice = Voice(tenant=tenant, **fields)
    if reference is not None:
        voice.reference_audio.save(reference.name, reference, save=False)
    voice.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            voice.save()
    except IntegrityError as exc:
        raise ApplicationError(
            "You already have a voice with this provider voice id.",
            code="voice_exists",
            fields={"provider_voice_id": ["Already used by another of your voices."]},
        ) from exc
    audit_log_record(tenant=tenant, action="voice.create", obj=voice, changes={"name": voice.name}, **(actor or {}))
    return voice


def voice_clone_create(
    *, tenant: Tenant, actor: dict | None = None, data: bytes, filename: str, content_type: str, **fields
) -> Voice:
    """Clone a voice: the reference audio goes to the TTS node first, then the row is saved with its id.

    The upload happens outside any transaction (it can take seconds); if the row then cannot be
    saved, the node's copy is deleted, so a refusal leaves nothing behind on either side.
    """
    chatterbox_voices.check_reference_audio(data)
    node_voice_id = chatterbox_voices.upload_voice(
        data=data, filename=filename, content_type=content_type, name=fields.get("name", "")
    )
    fields = {**fields, "provider": Voice.Provider.CHATTERBOX, "provider_voice_id": node_voice_id}
    try:
        return voice_create(
            tenant=tenant, actor=actor, reference=ContentFile(data, name=filename or "reference.wav"), **fields
        )
    except Exception:
        chatterbox_voices.delete_voice(node_voice_id)
        raise


# A document is cut into chunks and ranked on every caller turn: 500,000 characters is about a 300-page book.
KNOWLEDGE_MAX_CHARACTERS = 500_000
# Uploaded text is UTF-8 (at most 4 bytes a character, so a larger text file cannot fit the limit); a PDF or
# DOCX may be larger than its text (agents.knowledge.formats.MAX_FILE_BYTES).
KNOWLEDGE_UPLOAD_TYPES = ("text/plain", "text/markdown", "text/csv", "text/html", formats.PDF, formats.DOCX)
KNOWLEDGE_MAX_UPLOAD_BYTES = 4 * KNOWLEDGE_MAX_CHARACTERS
KNOWLEDGE_FIELDS = ("title", "content", "source_url", "source_format", "is_active")


def knowledge_upload_read_limit() -> int:
    """How many bytes of an upload to read: one more than any format allows, so an oversized file is seen."""
    return max(KNOWLEDGE_MAX_UPLOAD_BYTES, formats.MAX_FILE_BYTES) + 1


def _document_refused(field: str, message: str) -> ApplicationError:
    return formats.refused(message, field=field)


def _save_document(document: KnowledgeDocument, fields: list[str] | None = None) -> None:
    """Check what a knowledge document must be (a title, some text, within the size limit) and save it.

    A change saves only the changed `fields`: the embedding's status and progress, which a worker writes
    meanwhile, are never overwritten with what this copy of the row read earlier."""
    document.title = (document.title or "").strip()
    if not document.title:
        raise _document_refused("title", "Give the document a title.")
    if not (document.content or "").strip():
        raise _document_refused("content", "The document has no text.")
    if len(document.content) > KNOWLEDGE_MAX_CHARACTERS:
        raise _document_refused(
            "content",
            f"The document has {len(document.content):,} characters; at most {KNOWLEDGE_MAX_CHARACTERS:,} are "
            "allowed. Split it into several documents.",
        )
    if "\x00" in document.title or "\x00" in document.content:
        raise _document_refused("content", "The document contains a NUL character.")
    document.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            document.save(update_fields=None if fields is None else [*fields, "updated_at"])
    except IntegrityError as exc:
        message = "This agent already has a document with this title."
        raise ApplicationError(message, code="knowledge_title_taken", fields={"title": [message]}) from exc


def knowledge_upload_extract(*, data: bytes, content_type: str, filename: str = "") -> formats.Extracted:
    """The text and format of an uploaded document (agents.knowledge.formats), within the size limits."""
    kind = formats.kind_of(content_type, filename, data)
    return formats.extract(
        data, kind=kind, max_text_bytes=KNOWLEDGE_MAX_UPLOAD_BYTES, max_chars=KNOWLEDGE_MAX_CHARACTERS
    )


def knowledge_text_from_upload(*, data: bytes, content_type: str, filename: str = "") -> str:
    """The text of an uploaded document: UTF-8 text, Markdown, CSV, HTML, PDF or DOCX, within the limits."""
    return knowledge_upload_extract(data=data, content_type=content_type, filename=filename).text


def knowledge_url_fetch(*, url: str) -> fetch.Fetched:
    """The text of a web page, fetched behind the SSRF guard (agents.knowledge.fetch); outside any transaction."""
    return fetch.fetch(url, max_chars=KNOWLEDGE_MAX_CHARACTERS)


@transaction.atomic
def knowledge_document_create(
    *,
    agent: Agent,
    actor: dict | None = None,
    title: str,
    content: str,
    source_url: str = "",
    source_format: str = KnowledgeDocument.Format.TEXT,
    is_active: bool = True,
) -> KnowledgeDocument:
    """Add a document to the agent's knowledge base: searchable by its words at once, by meaning once embedded."""
    document = KnowledgeDocument(
        tenant=agent.tenant,
        agent=agent,
        title=title,
        content=content,
        source_url=source_url,
        source_format=source_format,
        is_active=is_active,
    )
    _save_document(document)
    embedding.document_index(document)
    audit_log_record(
        tenant=agent.tenant,
        action="knowledge.create",
        obj=document,
        changes={"agent": str(agent.pk), "title": document.title},
        **(actor or {}),
    )
    return document


@transaction.atomic
def knowledge_document_update(*, document: KnowledgeDocument, actor: dict | None = None, **fields) -> KnowledgeDocument:
    """Change the given fields of a knowledge document; new text is cut and embedded again."""
    changed = sorted(name for name in fields if name in KNOWLEDGE_FIELDS and getattr(document, name) != fields[name])
    for name in changed:
        setattr(document, name, fields[name])
    if changed:
        _save_document(document, changed)
        embedding.document_index(document)
        audit_log_record(
            tenant=document.tenant,
            action="knowledge.update",
            obj=document,
            changes={"agent": str(document.agent_id), "title": document.title, "fields": changed},
            **(actor or {}),
        )
    return document


@transaction.atomic
def knowledge_document_retry(*, document: KnowledgeDocument, actor: dict | None = None) -> KnowledgeDocument:
    """Embed a document again now: a failed one, or one waiting for its next try."""
    if document.status not in (KnowledgeDocument.Status.FAILED, KnowledgeDocument.Status.PENDING):
        message = f"The document is {document.get_status_display().lower()}: there is nothing to retry."
        raise Conflict(message, code="knowledge_not_retryable")
    document.chunks_hash = ""  # cut and embed it from the start
    embedding.document_index(document)
    audit_log_record(
        tenant=document.tenant,
        action="knowledge.retry",
        obj=document,
        changes={"agent": str(document.agent_id), "title": document.title},
        **(actor or {}),
    )
    return document


@transaction.atomic
def knowledge_document_delete(*, document: KnowledgeDocument, actor: dict | None = None) -> None:
    """Remove a document, and its chunks and vectors, from its agent's knowledge base."""
    audit_log_record(
        tenant=document.tenant,
        action="knowledge.delete",
        obj=document,
        changes={"agent": str(document.agent_id), "title": document.title},
        **(actor or {}),
    )
    KnowledgeChunk.objects.for_tenant(document.tenant_id).filter(document=document).delete()
    document.delete()


# --- duplicating an agent ---------------------------------------------------------------------------

COPY_SUFFIX = " (copy)"


def _copy_name(tenant: Tenant, name: str) -> str:
    """ "Front desk (copy)", then "Front desk (copy 2)"… the first one no live agent of the tenant has."""
    max_length = Agent._meta.get_field("name").max_length
    taken = set(Agent.objects.for_tenant(tenant).alive().values_list("name", flat=True))
    for n in range(1, 1000):
        suffix = COPY_SUFFIX if n == 1 else f" (copy {n})"
        candidate = name[: max_length - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise _name_taken()


@transaction.atomic
def agent_duplicate(*, agent: Agent, actor: dict | None = None) -> Agent:
    """A new agent with the same configuration, tools, transfer targets and knowledge documents, named
    "<name> (copy)". Phone numbers stay with the original: a number rings one agent. Audited."""
    duplicate = Agent(
        tenant=agent.tenant,
        name=_copy_name(agent.tenant, agent.name),
        # deepcopy: the JSON fields (tools, settings, transfer targets) must not share objects with the original
        **{name: deepcopy(getattr(agent, name)) for name in AGENT_FIELDS if name not in ("name", "voice")},
        voice=agent.voice,
    )
    _save_agent(duplicate)
    documents = list(KnowledgeDocument.objects.for_tenant(agent.tenant).filter(agent=agent).order_by("title"))
    _copy_documents(documents, duplicate)
    audit_log_record(
        tenant=agent.tenant,
        action="agent.duplicate",
        obj=duplicate,
        changes={"from": str(agent.pk), "name": duplicate.name, "documents": len(documents)},
        **(actor or {}),
    )
    return duplicate


KNOWLEDGE_COPIED = (
    "title", "content", "source_url", "source_format", "is_active", "status", "chunks_total", "chunks_embedded",
    "error", "embed_attempts", "embed_next_at", "chunks_hash", "model_id",
)  # fmt: skip
CHUNK_COPIED = ("position", "text", "section", "page", "question", "answer", "vector", "question_vector", "model_id")


def _copy_documents(documents: list[KnowledgeDocument], agent: Agent) -> None:
    """Copies of the documents for `agent`, with their chunks and vectors (nothing is embedded twice).

    A document being embedded is copied as waiting, so its copy is embedded by a run of its own."""
    copies = []
    for document in documents:
        copy = KnowledgeDocument(
            tenant=agent.tenant, agent=agent, **{f: getattr(document, f) for f in KNOWLEDGE_COPIED}
        )
        if copy.status == KnowledgeDocument.Status.PROCESSING:
            copy.status, copy.embed_next_at = KnowledgeDocument.Status.PENDING, None
        copies.append(copy)
    KnowledgeDocument.objects.bulk_create(copies)
    by_original = {document.pk: copy for document, copy in zip(documents, copies, strict=True)}
    chunks = KnowledgeChunk.objects.for_tenant(agent.tenant).filter(document_id__in=list(by_original))
    KnowledgeChunk.objects.bulk_create(
        (
            KnowledgeChunk(
                tenant=agent.tenant,
                agent=agent,
                document=by_original[chunk.document_id],
                **{f: getattr(chunk, f) for f in CHUNK_COPIED},
            )
            for chunk in chunks.order_by("document_id", "position").iterator(chunk_size=500)
        ),
        batch_size=500,
    )
    for copy in copies:
        if copy.status == KnowledgeDocument.Status.PENDING:
            tenant_id, document_id = str(copy.tenant_id), str(copy.pk)
            transaction.on_commit(lambda t=tenant_id, d=document_id: embedding.dispatch(t, d), robust=True)
