"""Writes for agents and voices; each is audited in its own transaction."""

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import chatterbox_voices
from agents.models import Agent, Voice
from telephony.models import PhoneNumber
from tenants.models import Tenant
from tenants.services import audit_log_record
from voiceapp.errors import ApplicationError

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
    released = PhoneNumber.objects.for_tenant(agent.tenant).filter(agent=agent).update(agent=None)
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
