"""Writes for agents and voices; each is audited in its own transaction."""

import logging
import mimetypes
from copy import deepcopy

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import chatterbox_voices
from agents.models import Agent, KnowledgeDocument, Voice
from core.errors import ApplicationError
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
# Uploaded documents are UTF-8 text (at most 4 bytes a character, so a larger file cannot fit the limit).
KNOWLEDGE_UPLOAD_TYPES = ("text/plain", "text/markdown", "text/csv")
KNOWLEDGE_MAX_UPLOAD_BYTES = 4 * KNOWLEDGE_MAX_CHARACTERS
KNOWLEDGE_FIELDS = ("title", "content", "source_url", "is_active")


def _document_refused(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_knowledge_document", fields={field: [message]})


def _save_document(document: KnowledgeDocument) -> None:
    """Check what a knowledge document must be (a title, some text, within the size limit) and save it."""
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
            document.save()
    except IntegrityError as exc:
        message = "This agent already has a document with this title."
        raise ApplicationError(message, code="knowledge_title_taken", fields={"title": [message]}) from exc


def knowledge_text_from_upload(*, data: bytes, content_type: str, filename: str = "") -> str:
    """The text of an uploaded document: UTF-8 plain text, Markdown or CSV, within the size limit."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("", "application/octet-stream"):  # curl and some browsers send no type for .md files
        kind = mimetypes.guess_type(filename or "")[0] or kind
    if kind not in KNOWLEDGE_UPLOAD_TYPES:
        raise _document_refused(
            "file", f"Upload plain text: {', '.join(KNOWLEDGE_UPLOAD_TYPES)} (this file is {kind or 'of no type'})."
        )
    if len(data) > KNOWLEDGE_MAX_UPLOAD_BYTES:
        raise _document_refused("file", f"The file is larger than {KNOWLEDGE_MAX_UPLOAD_BYTES:,} bytes.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _document_refused("file", "The file is not UTF-8 text.") from exc
    if "\x00" in text:
        raise _document_refused("file", "The file contains a NUL character: it is not plain text.")
    if not text.strip():
        raise _document_refused("file", "The file has no text.")
    if len(text) > KNOWLEDGE_MAX_CHARACTERS:
        raise _document_refused(
            "file", f"The file has {len(text):,} characters; at most {KNOWLEDGE_MAX_CHARACTERS:,} are allowed."
        )
    return text


@transaction.atomic
def knowledge_document_create(
    *, agent: Agent, actor: dict | None = None, title: str, content: str, source_url: str = "", is_active: bool = True
) -> KnowledgeDocument:
    """Add a document to the agent's knowledge base (used from the next call on)."""
    document = KnowledgeDocument(
        tenant=agent.tenant, agent=agent, title=title, content=content, source_url=source_url, is_active=is_active
    )
    _save_document(document)
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
    """Change the given fields of a knowledge document (title, content, source_url, is_active)."""
    changed = sorted(name for name in fields if name in KNOWLEDGE_FIELDS and getattr(document, name) != fields[name])
    for name in changed:
        setattr(document, name, fields[name])
    if changed:
        _save_document(document)
        audit_log_record(
            tenant=document.tenant,
            action="knowledge.update",
            obj=document,
            changes={"agent": str(document.agent_id), "title": document.title, "fields": changed},
            **(actor or {}),
        )
    return document


@transaction.atomic
def knowledge_document_delete(*, document: KnowledgeDocument, actor: dict | None = None) -> None:
    """Remove a document from its agent's knowledge base."""
    audit_log_record(
        tenant=document.tenant,
        action="knowledge.delete",
        obj=document,
        changes={"agent": str(document.agent_id), "title": document.title},
        **(actor or {}),
    )
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
    documents = KnowledgeDocument.objects.for_tenant(agent.tenant).filter(agent=agent).order_by("title")
    KnowledgeDocument.objects.bulk_create(
        KnowledgeDocument(
            tenant=agent.tenant,
            agent=duplicate,
            title=document.title,
            content=document.content,
            source_url=document.source_url,
            is_active=document.is_active,
        )
        for document in documents
    )
    audit_log_record(
        tenant=agent.tenant,
        action="agent.duplicate",
        obj=duplicate,
        changes={"from": str(agent.pk), "name": duplicate.name, "documents": len(documents)},
        **(actor or {}),
    )
    return duplicate
