"""Agents app: database constraints, the JSON-field schemas, and the models' clean()."""

import copy

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, KnowledgeChunk, KnowledgeDocument, Voice
from agents.schemas import validate_agent_settings, validate_tools, validate_transfer_targets
from tests import factories
from tests.models.constraints import assert_check_constraint, unique_violation

pytestmark = pytest.mark.django_db

CHECK_CASES = [
    pytest.param(
        "voice_exaggeration_range",
        lambda t: factories.VoiceFactory(tenant=t),
        {"exaggeration": 0.24},
        {"exaggeration": 0.25},
        id="voice_exaggeration_range-low",
    ),
    pytest.param(
        "voice_exaggeration_range",
        lambda t: factories.VoiceFactory(tenant=t),
        {"exaggeration": 2.01},
        {"exaggeration": 2.0},
        id="voice_exaggeration_range-high",
    ),
    pytest.param(
        "voice_cfg_weight_range",
        lambda t: factories.VoiceFactory(tenant=t),
        {"cfg_weight": -0.01},
        {"cfg_weight": 0.0},
        id="voice_cfg_weight_range-low",
    ),
    pytest.param(
        "voice_cfg_weight_range",
        lambda t: factories.VoiceFactory(tenant=t),
        {"cfg_weight": 1.01},
        {"cfg_weight": 1.0},
        id="voice_cfg_weight_range-high",
    ),
    pytest.param(
        "voice_provider_valid",
        lambda t: factories.VoiceFactory(tenant=t),
        {"provider": "elevenlabs"},
        {"provider": "piper"},
        id="voice_provider_valid",
    ),
    pytest.param(
        "agent_system_prompt_not_empty",
        lambda t: factories.AgentFactory(tenant=t),
        {"system_prompt": ""},
        {"system_prompt": "Be brief."},
        id="agent_system_prompt_not_empty",
    ),
    pytest.param(
        "agent_status_valid",
        lambda t: factories.AgentFactory(tenant=t),
        {"status": "deleted"},
        {"status": "paused"},
        id="agent_status_valid",
    ),
    pytest.param(
        "knowledge_content_not_empty",
        lambda t: factories.KnowledgeDocumentFactory(agent__tenant=t),
        {"content": ""},
        {"content": "Q: Parking? A: Free, behind the building."},
        id="knowledge_content_not_empty",
    ),
    pytest.param(
        "knowledge_status_valid",
        lambda t: factories.KnowledgeDocumentFactory(agent__tenant=t),
        {"status": "done"},
        {"status": "ready"},
        id="knowledge_status_valid",
    ),
    pytest.param(
        "knowledge_progress_within_total",
        lambda t: factories.KnowledgeDocumentFactory(agent__tenant=t, chunks_total=3),
        {"chunks_embedded": 4},
        {"chunks_embedded": 3},
        id="knowledge_progress_within_total",
    ),
    pytest.param(
        "knowledge_chunk_text_not_empty",
        lambda t: factories.KnowledgeChunkFactory(document__agent__tenant=t),
        {"text": ""},
        {"text": "Free parking behind the building."},
        id="knowledge_chunk_text_not_empty",
    ),
]

UNIQUE_CONSTRAINTS_TESTED = {
    "voice_unique_tenant_provider_id",
    "voice_unique_platform_provider_id",
    "agent_unique_live_name",
    "knowledge_unique_agent_title",
    "knowledge_chunk_unique_position",
}


def test_every_constraint_of_the_app_has_a_test():
    declared = {c.name for m in apps.get_app_config("agents").get_models() for c in m._meta.constraints}
    assert declared == {p.values[0] for p in CHECK_CASES} | UNIQUE_CONSTRAINTS_TESTED
    unique_fields = [
        f.name
        for m in apps.get_app_config("agents").get_models()
        for f in m._meta.fields
        if f.unique and not f.primary_key
    ]
    assert unique_fields == []


@pytest.mark.parametrize(("constraint", "make", "bad", "good"), CHECK_CASES)
def test_check_constraint(tenant, constraint, make, bad, good):
    assert_check_constraint(tenant, constraint, make, bad, good)


# --- Voices -------------------------------------------------------------------------------------


def test_voice_unique_per_tenant_provider_and_id(tenant, other_tenant):
    Voice.objects.create(tenant=tenant, name="Ann", provider="chatterbox", provider_voice_id="ann")

    with unique_violation("voice_unique_tenant_provider_id"), transaction.atomic():
        Voice.objects.create(tenant=tenant, name="Ann again", provider="chatterbox", provider_voice_id="ann")

    Voice.objects.create(tenant=other_tenant, name="Ann", provider="chatterbox", provider_voice_id="ann")
    Voice.objects.create(tenant=tenant, name="Ann (piper)", provider="piper", provider_voice_id="ann")
    assert Voice.objects.filter(provider_voice_id="ann").count() == 3


def test_voice_platform_voices_unique_on_provider_and_id(tenant, other_tenant):
    Voice.objects.create(tenant=None, name="Default", provider="chatterbox", provider_voice_id="default_female_1")

    # NULL tenants are distinct to the three-column constraint: the conditional one catches the duplicate.
    with unique_violation("voice_unique_platform_provider_id"), transaction.atomic():
        Voice.objects.create(tenant=None, name="Default 2", provider="chatterbox", provider_voice_id="default_female_1")

    # Two tenants may each have their own voice with the platform voice's id, and another provider may reuse it.
    Voice.objects.create(tenant=tenant, name="Mine", provider="chatterbox", provider_voice_id="default_female_1")
    Voice.objects.create(
        tenant=other_tenant, name="Theirs", provider="chatterbox", provider_voice_id="default_female_1"
    )
    Voice.objects.create(tenant=None, name="Piper default", provider="piper", provider_voice_id="default_female_1")
    assert Voice.objects.filter(provider_voice_id="default_female_1").count() == 4
    assert Voice.objects.filter(provider_voice_id="default_female_1", tenant__isnull=True).count() == 2


# --- Agents -------------------------------------------------------------------------------------


def test_agent_name_unique_among_live_agents(tenant, other_tenant):
    live = factories.AgentFactory(tenant=tenant, name="Reception")

    with unique_violation("agent_unique_live_name"), transaction.atomic():
        Agent.objects.create(tenant=tenant, name="Reception", system_prompt="Hi.")

    # Another tenant may use the name.
    Agent.objects.create(tenant=other_tenant, name="Reception", system_prompt="Hi.")
    # Once the first is soft-deleted, the name is free again, and deleted agents may share it.
    Agent.objects.dangerously_unscoped().filter(pk=live.pk).update(deleted_at=timezone.now())
    replacement = Agent.objects.create(tenant=tenant, name="Reception", system_prompt="Hi.")
    Agent.objects.dangerously_unscoped().filter(pk=replacement.pk).update(deleted_at=timezone.now())
    Agent.objects.create(tenant=tenant, name="Reception", system_prompt="Hi.")
    assert Agent.objects.filter(tenant=tenant, name="Reception").count() == 3
    assert Agent.objects.filter(tenant=tenant, name="Reception", deleted_at__isnull=True).count() == 1


def test_agent_undelete_refused_while_a_live_agent_has_the_name(tenant):
    deleted = factories.AgentFactory(tenant=tenant, name="Reception", deleted_at=timezone.now())
    factories.AgentFactory(tenant=tenant, name="Reception")

    with unique_violation("agent_unique_live_name"), transaction.atomic():
        Agent.objects.dangerously_unscoped().filter(pk=deleted.pk).update(deleted_at=None)

    deleted.refresh_from_db()
    assert deleted.deleted_at is not None


# --- Knowledge documents ------------------------------------------------------------------------


def test_knowledge_title_unique_per_agent(tenant):
    doc = factories.KnowledgeDocumentFactory(agent__tenant=tenant, title="Opening hours")

    with unique_violation("knowledge_unique_agent_title"), transaction.atomic():
        KnowledgeDocument.objects.create(tenant=tenant, agent=doc.agent, title="Opening hours", content="x")

    other_agent = factories.AgentFactory(tenant=tenant)
    KnowledgeDocument.objects.create(tenant=tenant, agent=other_agent, title="Opening hours", content="x")
    KnowledgeDocument.objects.create(tenant=tenant, agent=doc.agent, title="Prices", content="x")
    assert KnowledgeDocument.objects.filter(tenant=tenant).count() == 3


def test_knowledge_chunk_position_unique_per_document(tenant):
    chunk = factories.KnowledgeChunkFactory(document__agent__tenant=tenant, position=0)

    with unique_violation("knowledge_chunk_unique_position"), transaction.atomic():
        factories.KnowledgeChunkFactory(document=chunk.document, position=0)

    factories.KnowledgeChunkFactory(document=chunk.document, position=1)
    factories.KnowledgeChunkFactory(document__agent__tenant=tenant, position=0)
    assert KnowledgeChunk.objects.filter(tenant=tenant).count() == 3


# --- Tool, settings and transfer-target schemas -------------------------------------------------

VALID_TOOL = {
    "name": "check_availability",
    "description": "Look up free appointment slots.",
    "parameters": {"type": "object", "properties": {"date": {"type": "string", "format": "date"}}},
    "webhook_url": "https://crm.example.com/hooks/availability",
    "method": "POST",
    "timeout_seconds": 5,
    "filler": "Let me check that for you.",
}


def _tool(**changes):
    return {**VALID_TOOL, **changes}


def _without(key):
    return {k: v for k, v in VALID_TOOL.items() if k != key}


@pytest.mark.parametrize(
    "tools",
    [
        pytest.param([], id="empty"),
        pytest.param([VALID_TOOL], id="one-tool"),
        pytest.param([_tool(), _tool(name="book-appointment_2")], id="two-tools"),
        pytest.param([_without("method")], id="optional-keys-left-out"),
    ],
)
def test_valid_tools_accepted(tenant, tools):
    validate_tools(tools)
    factories.AgentFactory.build(tenant=tenant, tools=tools).full_clean()


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        pytest.param([_without("name")], "tools[0]: 'name' is a required property", id="missing-name"),
        pytest.param(
            [_tool(name="check availability!")],
            "tools[0]['name']: 'check availability!' is not valid: use 1 to 64 letters, digits, '_' or '-'",
            id="bad-name-chars",
        ),
        pytest.param(
            [_tool(name="x" * 65)],
            f"tools[0]['name']: '{'x' * 65}' is not valid: use 1 to 64 letters, digits, '_' or '-'",
            id="name-too-long",
        ),
        pytest.param(
            [_tool(parameters={"type": "array"})],
            "tools[0]['parameters']['type']: 'object' was expected",
            id="parameters-not-type-object",
        ),
        pytest.param(
            [_tool(parameters={"type": "object", "properties": {"a": {"type": "nope"}}})],
            "tools['check_availability'].parameters is not a valid JSON Schema: "
            "'nope' is not valid under any of the given schemas",
            id="parameters-invalid-json-schema",
        ),
        pytest.param(
            [_tool(), _tool(description="Again.")],
            "tools: duplicate tool names ['check_availability'].",
            id="duplicate-names",
        ),
        pytest.param(
            [_tool(name="transfer_call")],
            "tools: ['transfer_call'] are built-in tools and cannot be redefined.",
            id="reserved-transfer_call",
        ),
        pytest.param(
            [_tool(name="end_call"), _tool(name="transfer_call")],
            "tools: ['end_call', 'transfer_call'] are built-in tools and cannot be redefined.",
            id="reserved-both",
        ),
        pytest.param(
            [_tool(secret="x")],
            "tools[0]: Additional properties are not allowed ('secret' was unexpected)",
            id="extra-key",
        ),
        pytest.param(
            [_tool(webhook_url="ftp://crm.example.com")],
            "tools[0]['webhook_url']: 'ftp://crm.example.com' is not valid: must start with http:// or https://",
            id="webhook-not-http",
        ),
        pytest.param(
            [_tool(timeout_seconds=0)],
            "tools[0]['timeout_seconds']: 0 is less than or equal to the minimum of 0",
            id="timeout-zero",
        ),
        pytest.param({"name": "x"}, "tools: {'name': 'x'} is not of type 'array'", id="not-a-list"),
    ],
)
def test_invalid_tools_refused(tenant, tools, message):
    with pytest.raises(ValidationError) as exc:
        validate_tools(tools)
    assert exc.value.messages == [message]

    agent = factories.AgentFactory.build(tenant=tenant, tools=tools)
    with pytest.raises(ValidationError) as exc:
        agent.full_clean()
    assert exc.value.message_dict == {"tools": [message]}


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="empty"),
        pytest.param({"llm": {"temperature": 0.3}}, id="llm-temperature"),
        pytest.param(
            {
                "stt": {"provider": "offline", "language": "en-US"},
                "llm": {"provider": "anthropic", "temperature": 1, "max_tokens": 512},
                "tts": {"provider": "chatterbox", "model": "turbo"},
                "vad": {"threshold": 0.5, "min_silence_duration_ms": 300},
                "conversation": {"greeting_enabled": False},
                "tools": {"webhook_timeout_seconds": 10, "max_concurrent_tools": 3},
            },
            id="every-section",
        ),
    ],
)
def test_valid_settings_accepted(tenant, settings):
    validate_agent_settings(settings)
    factories.AgentFactory.build(tenant=tenant, settings=settings).full_clean()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"billing": {}},
            "settings: Additional properties are not allowed ('billing' was unexpected)",
            id="unknown-section",
        ),
        pytest.param(
            {"llm": {"temperature": 1.5}},
            "settings['llm']['temperature']: 1.5 is greater than the maximum of 1",
            id="temperature-1.5",
        ),
        pytest.param(
            {"llm": {"temperature": "hot"}},
            "settings['llm']['temperature']: 'hot' is not of type 'number'",
            id="temperature-wrong-type",
        ),
        pytest.param({"llm": "fast"}, "settings['llm']: 'fast' is not of type 'object'", id="section-not-object"),
        pytest.param(
            {"tts": {"model": "huge"}},
            "settings['tts']['model']: 'huge' is not one of ['turbo', 'standard', 'multilingual']",
            id="unknown-tts-model",
        ),
        pytest.param(["llm"], "settings: ['llm'] is not of type 'object'", id="not-an-object"),
    ],
)
def test_invalid_settings_refused(tenant, settings, message):
    with pytest.raises(ValidationError) as exc:
        validate_agent_settings(settings)
    assert exc.value.messages == [message]

    agent = factories.AgentFactory.build(tenant=tenant, settings=settings)
    with pytest.raises(ValidationError) as exc:
        agent.full_clean()
    assert exc.value.message_dict == {"settings": [message]}


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param([], id="empty"),
        pytest.param([{"name": "Front desk", "destination": "+15551234567"}], id="e164"),
        pytest.param(
            [{"name": "Billing", "destination": "ext:1001", "type": "warm", "description": "Billing questions"}],
            id="extension",
        ),
    ],
)
def test_valid_transfer_targets_accepted(tenant, targets):
    validate_transfer_targets(targets)
    factories.AgentFactory.build(tenant=tenant, transfer_targets=targets).full_clean()


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        pytest.param(
            [{"name": "Front desk", "destination": "5551234567"}],
            "transfer_targets[0]['destination']: '5551234567' is not valid: use an E.164 number (+15551234567) or an extension (ext:1001)",
            id="no-plus",
        ),
        pytest.param(
            [{"name": "Front desk", "destination": "ext:"}],
            "transfer_targets[0]['destination']: 'ext:' is not valid: use an E.164 number (+15551234567) or an extension (ext:1001)",
            id="empty-extension",
        ),
        pytest.param(
            [{"name": "Front desk", "destination": "+1555123456x"}],
            "transfer_targets[0]['destination']: '+1555123456x' is not valid: use an E.164 number (+15551234567) or an extension (ext:1001)",
            id="letters",
        ),
        pytest.param(
            [{"name": "Front desk"}],
            "transfer_targets[0]: 'destination' is a required property",
            id="missing-destination",
        ),
        pytest.param(
            [{"name": "Front desk", "destination": "ext:1001", "type": "cold"}],
            "transfer_targets[0]['type']: 'cold' is not one of ['blind', 'warm']",
            id="bad-type",
        ),
        pytest.param(
            [{"name": "Front desk", "destination": "ext:1001", "priority": 1}],
            "transfer_targets[0]: Additional properties are not allowed ('priority' was unexpected)",
            id="extra-key",
        ),
    ],
)
def test_invalid_transfer_targets_refused(tenant, targets, message):
    with pytest.raises(ValidationError) as exc:
        validate_transfer_targets(targets)
    assert exc.value.messages == [message]

    agent = factories.AgentFactory.build(tenant=tenant, transfer_targets=targets)
    with pytest.raises(ValidationError) as exc:
        agent.full_clean()
    assert exc.value.message_dict == {"transfer_targets": [message]}


def test_transfer_destination_with_trailing_newline_refused():
    with pytest.raises(ValidationError):
        validate_transfer_targets([{"name": "Front desk", "destination": "ext:1001\n"}])


# --- clean(): cross-tenant references -----------------------------------------------------------


def test_agent_clean_refuses_another_tenants_voice(tenant, other_tenant):
    voice = factories.VoiceFactory(tenant=other_tenant)
    agent = factories.AgentFactory.build(tenant=tenant, voice=voice)

    with pytest.raises(ValidationError) as exc:
        agent.full_clean()

    assert exc.value.message_dict == {"voice": ["This voice belongs to another tenant."]}


@pytest.mark.parametrize("voice_owner", ["platform", "own"])
def test_agent_clean_accepts_platform_and_own_voice(tenant, voice_owner):
    voice = factories.VoiceFactory(tenant=None if voice_owner == "platform" else tenant)
    factories.AgentFactory.build(tenant=tenant, voice=voice).full_clean()


def test_knowledge_document_clean_refuses_another_tenants_agent(tenant, other_tenant):
    doc = factories.KnowledgeDocumentFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=other_tenant))

    with pytest.raises(ValidationError) as exc:
        doc.full_clean()

    assert exc.value.message_dict == {"agent": ["This agent belongs to another tenant."]}
    factories.KnowledgeDocumentFactory.build(tenant=tenant, agent=factories.AgentFactory(tenant=tenant)).full_clean()


# --- effective_settings -------------------------------------------------------------------------


def test_effective_settings_merges_per_section_without_mutating_defaults():
    defaults = {
        "llm": {"provider": "anthropic", "temperature": 0.7, "max_tokens": 1024},
        "tts": {"provider": "chatterbox", "model": "turbo"},
    }
    pristine = copy.deepcopy(defaults)
    agent = Agent(settings={"llm": {"temperature": 0.2}, "vad": {"threshold": 0.6}})

    merged = agent.effective_settings(defaults)

    assert merged == {
        "llm": {"provider": "anthropic", "temperature": 0.2, "max_tokens": 1024},
        "tts": {"provider": "chatterbox", "model": "turbo"},
        "vad": {"threshold": 0.6},
    }
    assert defaults == pristine
    assert merged["tts"] is not defaults["tts"]
    # A second agent with no overrides sees the untouched defaults.
    assert Agent(settings={}).effective_settings(defaults) == pristine
