"""The Agents pages (list, create, edit, agent page, knowledge base) and the Voices page (clone, preview)."""

import io
import json
import re
import wave

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from agents import chatterbox_voices, selectors
from agents.models import Agent, KnowledgeDocument, Voice
from telephony.models import PhoneNumber
from tenants.models import AuditLog
from tests import factories
from voice import preview

pytestmark = pytest.mark.django_db

TOOL = {
    "name": "check_availability",
    "description": "Find free appointment slots.",
    "parameters": {"type": "object", "properties": {"date": {"type": "string"}}, "required": ["date"]},
    "webhook_url": "https://example.com/hooks/availability",
    "method": "POST",
    "timeout_seconds": 5,
}
TARGET = {"name": "Front desk", "destination": "ext:1001", "type": "warm"}


def form_data(**overrides) -> dict:
    """A complete, valid agent form post (every field the page sends)."""
    data = {
        "name": "Front desk",
        "status": "active",
        "description": "Answers the main line",
        "system_prompt": "You are the receptionist of Acme Dental.",
        "greeting_message": "Thanks for calling Acme Dental!",
        "voicemail_message": "Please call us back.",
        "voice": "",
        "language": "",
        "stt_provider": "",
        "stt_model": "",
        "llm_provider": "",
        "llm_model": "",
        "llm_temperature": "",
        "llm_max_tokens": "",
        "tts_provider": "",
        "tts_model": "",
        "tools": json.dumps([TOOL]),
        "tool_timeout": "",
        "transfer_targets": json.dumps([TARGET]),
        "advanced_settings": "",
    }
    data.update(overrides)
    return data


def html(response) -> str:
    return response.content.decode()


def wav_bytes(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * np.pi * 150 * t)).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# --- the list ------------------------------------------------------------------------------------


def test_list_shows_the_tenants_agents_with_voice_numbers_and_offline_engines(web_client, tenant, other_tenant):
    voice = factories.VoiceFactory(name="Ada")
    agent = factories.AgentFactory(tenant=tenant, name="Front desk", voice=voice)
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550001111")
    factories.AgentFactory(tenant=tenant, name="Night line", status=Agent.Status.PAUSED)
    factories.AgentFactory(tenant=tenant, name="Gone", deleted_at="2024-01-01T00:00:00Z")
    factories.AgentFactory(tenant=other_tenant, name="Globex secret agent")

    response = web_client.get("/agents/")

    assert response.status_code == 200
    assert response.context["page_title"] == "Agents"
    page = html(response)
    assert 'data-testid="agents-table"' in page
    assert [row[0].name for row in response.context["rows"]] == ["Front desk", "Night line"]
    assert "Globex secret agent" not in page
    assert "Gone" not in page
    assert "+15550001111" in page
    assert "Ada" in page
    assert "Paused" in page
    # Embedded defaults: every stage runs on an offline engine, and the page says so.
    engines = response.context["rows"][0][1]
    assert {stage: (e.provider, e.offline) for stage, e in engines.items()} == {
        "stt": ("offline-whisper", True),
        "llm": ("offline-responder", True),
        "tts": ("offline-piper", True),
    }
    assert page.count('data-testid="engine-offline"') == 6
    assert 'href="/agents/new/"' in page


def test_list_empty_state_offers_to_create_an_agent(web_client, other_tenant):
    factories.AgentFactory(tenant=other_tenant)

    response = web_client.get("/agents/")

    assert response.status_code == 200
    page = html(response)
    assert "No agents yet" in page
    assert "Create an agent" in page
    assert 'href="/agents/new/"' in page
    assert 'data-testid="agents-table"' not in page


def test_list_is_paginated(web_client, tenant):
    for n in range(27):
        factories.AgentFactory(tenant=tenant, name=f"Agent {n:02d}")

    first = web_client.get("/agents/")
    second = web_client.get("/agents/?page=2")

    assert len(first.context["rows"]) == 25
    assert [row[0].name for row in second.context["rows"]] == ["Agent 25", "Agent 26"]


def test_viewer_sees_the_list_without_write_buttons(viewer_client, tenant):
    factories.AgentFactory(tenant=tenant, name="Front desk")

    page = html(viewer_client.get("/agents/"))

    assert "Front desk" in page
    assert 'data-testid="agent-create"' not in page


# --- create --------------------------------------------------------------------------------------


def test_create_page_renders_the_form(web_client):
    response = web_client.get("/agents/new/")

    assert response.status_code == 200
    page = html(response)
    assert 'data-testid="agent-form"' in page
    assert 'data-testid="agent-save"' in page
    assert 'id="id_name"' in page
    assert "Platform default (Whisper (offline))" in page
    assert "check_availability" in page  # the tools format example


def test_create_saves_exactly_the_posted_values_and_opens_the_agent_page(web_client, tenant, owner):
    voice = factories.VoiceFactory(tenant=tenant, name="Ada")
    data = form_data(
        voice=str(voice.pk),
        status="paused",
        language="en-GB",
        llm_provider="offline",
        llm_temperature="0.3",
        llm_max_tokens="300",
        tts_provider="offline",
        tool_timeout="8",
        advanced_settings='{"vad": {"threshold": 0.6}}',
    )

    response = web_client.post("/agents/new/", data)

    agent = Agent.objects.for_tenant(tenant).get()
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/"
    assert (agent.name, agent.status, agent.description) == ("Front desk", "paused", "Answers the main line")
    assert agent.system_prompt == "You are the receptionist of Acme Dental."
    assert agent.greeting_message == "Thanks for calling Acme Dental!"
    assert agent.voicemail_message == "Please call us back."
    assert agent.voice == voice
    assert agent.tools == [TOOL]
    assert agent.transfer_targets == [TARGET]
    assert agent.settings == {
        "vad": {"threshold": 0.6},
        "stt": {"language": "en-GB"},
        "llm": {"provider": "offline", "temperature": 0.3, "max_tokens": 300},
        "tts": {"provider": "offline"},
        "tools": {"webhook_timeout_seconds": 8.0},
    }
    audit = AuditLog.objects.for_tenant(tenant).get(action="agent.create")
    assert (audit.actor_user, audit.object_id) == (owner, str(agent.pk))
    page = html(web_client.get(response["Location"]))
    assert "Agent “Front desk” created." in page


def test_create_with_an_invalid_tool_schema_shows_the_error_inline_and_creates_nothing(web_client, tenant):
    bad_tool = {**TOOL, "parameters": {"type": "string"}}
    response = web_client.post("/agents/new/", form_data(tools=json.dumps([bad_tool])))

    assert response.status_code == 400
    assert Agent.objects.for_tenant(tenant).count() == 0
    assert response.context["form"].errors == {"tools": ["tools[0]['parameters']['type']: 'object' was expected"]}
    page = html(response)
    assert 'data-testid="error-tools"' in page
    assert "tools[0][&#x27;parameters&#x27;][&#x27;type&#x27;]: &#x27;object&#x27; was expected" in page
    assert "Thanks for calling Acme Dental!" in page  # what was typed is kept


def test_create_with_a_tool_parameters_schema_that_is_no_json_schema_is_refused(web_client, tenant):
    bad_tool = {**TOOL, "parameters": {"type": "object", "properties": {"date": {"type": "when"}}}}
    response = web_client.post("/agents/new/", form_data(tools=json.dumps([bad_tool])))

    assert response.status_code == 400
    assert Agent.objects.for_tenant(tenant).count() == 0
    [error] = response.context["form"].errors["tools"]
    assert error.startswith("tools['check_availability'].parameters is not a valid JSON Schema:")


def test_create_with_broken_json_says_where(web_client, tenant):
    response = web_client.post("/agents/new/", form_data(tools='[{"name": "x",}]'))

    assert response.status_code == 400
    assert Agent.objects.for_tenant(tenant).count() == 0
    assert response.context["form"].errors == {
        "tools": ["This is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 15)."]
    }


def test_create_with_invalid_settings_points_at_the_setting(web_client, tenant):
    response = web_client.post("/agents/new/", form_data(advanced_settings='{"llm": {"temperature": 3}}'))

    assert response.status_code == 400
    assert Agent.objects.for_tenant(tenant).count() == 0
    assert response.context["form"].errors == {
        "advanced_settings": ["settings['llm']['temperature']: 3 is greater than the maximum of 1"]
    }


def test_create_with_a_taken_name_shows_the_services_error_on_the_name(web_client, tenant):
    factories.AgentFactory(tenant=tenant, name="Front desk")

    response = web_client.post("/agents/new/", form_data())

    assert response.status_code == 400
    assert response.context["form"].errors == {"name": ["An agent with this name already exists."]}
    assert Agent.objects.for_tenant(tenant).count() == 1


def test_create_refuses_another_tenants_voice(web_client, tenant, other_tenant):
    theirs = factories.VoiceFactory(tenant=other_tenant)

    response = web_client.post("/agents/new/", form_data(voice=str(theirs.pk)))

    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["voice"]
    assert Agent.objects.for_tenant(tenant).count() == 0


def test_member_can_create_an_agent(member_client, tenant):
    response = member_client.post("/agents/new/", form_data())

    assert response.status_code == 302
    assert Agent.objects.for_tenant(tenant).get().name == "Front desk"


def test_viewer_sees_a_disabled_form_and_cannot_post(viewer_client, tenant):
    page = html(viewer_client.get("/agents/new/"))
    assert 'data-testid="agent-form"' in page
    assert 'data-testid="agent-save"' not in page
    assert '<input type="text" name="name" maxlength="255" required disabled' in page

    response = viewer_client.post("/agents/new/", form_data())

    assert response.status_code == 403
    assert Agent.objects.for_tenant(tenant).count() == 0


# --- edit ----------------------------------------------------------------------------------------


def test_edit_shows_the_settings_in_their_fields_and_saving_unchanged_changes_nothing(web_client, tenant):
    settings = {"llm": {"temperature": 0.2, "provider": "offline"}, "vad": {"threshold": 0.6}}
    agent = factories.AgentFactory(tenant=tenant, name="Front desk", settings=settings, tools=[TOOL])

    response = web_client.get(f"/agents/{agent.pk}/edit/")

    assert response.status_code == 200
    form = response.context["form"]
    assert form["llm_temperature"].value() == 0.2
    assert form["llm_provider"].value() == "offline"
    assert form["advanced_settings"].value() == '{\n  "vad": {\n    "threshold": 0.6\n  }\n}'
    assert 'data-testid="agent-save"' in html(response)

    # Post back exactly what the page shows.
    posted = {name: "" if form[name].value() is None else form[name].value() for name in form.fields}
    response = web_client.post(f"/agents/{agent.pk}/edit/", posted)

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.settings == settings
    assert agent.tools == [TOOL]
    assert not AuditLog.objects.for_tenant(tenant).filter(action="agent.update").exists()


def test_edit_saves_the_changes(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk", settings={"llm": {"temperature": 0.2}})

    response = web_client.post(
        f"/agents/{agent.pk}/edit/", form_data(name="Reception", tools="", transfer_targets="", llm_temperature="")
    )

    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/"
    agent.refresh_from_db()
    assert (agent.name, agent.tools, agent.transfer_targets, agent.settings) == ("Reception", [], [], {})
    assert (agent.system_prompt, agent.greeting_message) == (
        "You are the receptionist of Acme Dental.",
        "Thanks for calling Acme Dental!",
    )
    audit = AuditLog.objects.for_tenant(tenant).get(action="agent.update")
    assert audit.changes == {
        "fields": ["description", "greeting_message", "name", "settings", "system_prompt", "voicemail_message"]
    }


def test_edit_with_an_invalid_tool_changes_nothing(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk", tools=[TOOL])

    response = web_client.post(f"/agents/{agent.pk}/edit/", form_data(name="Renamed", tools='[{"name": "x"}]'))

    assert response.status_code == 400
    assert "tools[0]: &#x27;description&#x27; is a required property" in html(response)
    agent.refresh_from_db()
    assert (agent.name, agent.tools) == ("Front desk", [TOOL])


def test_another_tenants_agent_is_404_everywhere(other_web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    document = factories.KnowledgeDocumentFactory(agent=agent)

    assert other_web_client.get(f"/agents/{agent.pk}/").status_code == 404
    assert other_web_client.get(f"/agents/{agent.pk}/edit/").status_code == 404
    assert other_web_client.post(f"/agents/{agent.pk}/edit/", form_data(name="Stolen")).status_code == 404
    assert other_web_client.post(f"/agents/{agent.pk}/delete/").status_code == 404
    assert other_web_client.post(f"/agents/{agent.pk}/documents/", {"document-title": "x"}).status_code == 404
    assert other_web_client.post(f"/agents/{agent.pk}/documents/{document.pk}/delete/").status_code == 404
    agent.refresh_from_db()
    assert (agent.name, agent.deleted_at) == ("Front desk", None)
    assert KnowledgeDocument.objects.dangerously_unscoped().filter(pk=document.pk).exists()


def test_viewer_cannot_edit_or_delete(viewer_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")

    page = html(viewer_client.get(f"/agents/{agent.pk}/edit/"))
    assert 'data-testid="agent-save"' not in page
    assert 'data-testid="document-form"' not in page
    assert viewer_client.post(f"/agents/{agent.pk}/edit/", form_data(name="Changed")).status_code == 403
    assert viewer_client.post(f"/agents/{agent.pk}/delete/").status_code == 403

    agent.refresh_from_db()
    assert (agent.name, agent.deleted_at) == ("Front desk", None)


# --- the agent page ------------------------------------------------------------------------------


def test_agent_page_summarises_the_configuration_numbers_and_calls(web_client, tenant, other_tenant):
    voice = factories.VoiceFactory(name="Ada")
    agent = factories.AgentFactory(
        tenant=tenant, name="Front desk", voice=voice, tools=[TOOL], transfer_targets=[TARGET]
    )
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550001111")
    factories.KnowledgeDocumentFactory(agent=agent, title="Opening hours")
    call = factories.CallFactory(tenant=tenant, agent=agent, from_number="+15557654321")
    factories.CallFactory(tenant=tenant, from_number="+15559999999")  # another agent's call

    response = web_client.get(f"/agents/{agent.pk}/")

    assert response.status_code == 200
    assert response.context["page_title"] == "Front desk"
    assert list(response.context["calls"]) == [call]
    page = html(response)
    for text in (
        'data-testid="agent-detail"',
        "You are a helpful receptionist.",
        "Hello, how can I help?",
        "Ada",
        "check_availability",
        "ext:1001",
        "Opening hours",
        "+15550001111",
        "+15557654321",
        'id="test-call"',
        f'href="/agents/{agent.pk}/edit/"',
        'data-testid="agent-delete"',
        'class="two-col agent-layout"',
    ):
        assert text in page, text
    assert "+15559999999" not in page


def test_agent_page_for_viewer_has_no_edit_or_delete(viewer_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)

    page = html(viewer_client.get(f"/agents/{agent.pk}/"))

    assert 'data-testid="agent-detail"' in page
    assert 'data-testid="agent-edit"' not in page
    assert 'data-testid="agent-delete"' not in page


def test_agent_page_of_an_agent_without_calls_has_empty_states(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)

    page = html(web_client.get(f"/agents/{agent.pk}/"))

    assert "No calls yet" in page
    assert "No number rings this agent yet." in page


def test_delete_soft_deletes_and_unassigns_numbers(member_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    number = factories.PhoneNumberFactory(tenant=tenant, agent=agent)

    response = member_client.post(f"/agents/{agent.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == "/agents/"
    agent.refresh_from_db()
    number.refresh_from_db()
    assert agent.deleted_at is not None
    assert agent.status == Agent.Status.PAUSED
    assert number.agent is None
    assert member_client.get(f"/agents/{agent.pk}/").status_code == 404
    assert member_client.get(f"/agents/{agent.pk}/delete/").status_code == 405


# --- knowledge base ------------------------------------------------------------------------------


def test_add_and_remove_a_knowledge_document(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)

    response = web_client.post(
        f"/agents/{agent.pk}/documents/",
        {"document-title": "Opening hours", "document-content": "Q: Open? A: 9 to 5.", "document-source_url": ""},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/edit/#knowledge"
    document = KnowledgeDocument.objects.for_tenant(tenant).get()
    assert (document.agent, document.title, document.content, document.source_url, document.is_active) == (
        agent,
        "Opening hours",
        "Q: Open? A: 9 to 5.",
        "",
        True,
    )
    assert "Opening hours" in html(web_client.get(f"/agents/{agent.pk}/edit/"))

    response = web_client.post(f"/agents/{agent.pk}/documents/{document.pk}/delete/")

    assert response.status_code == 302
    assert not KnowledgeDocument.objects.dangerously_unscoped().filter(pk=document.pk).exists()
    assert list(AuditLog.objects.for_tenant(tenant).order_by("created_at").values_list("action", flat=True)) == [
        "knowledge.create",
        "knowledge.delete",
    ]


def test_knowledge_document_errors_show_on_the_edit_page(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    factories.KnowledgeDocumentFactory(agent=agent, title="Opening hours")

    duplicate = web_client.post(
        f"/agents/{agent.pk}/documents/", {"document-title": "Opening hours", "document-content": "Again"}
    )
    empty = web_client.post(f"/agents/{agent.pk}/documents/", {"document-title": "Prices", "document-content": ""})

    assert duplicate.status_code == 400
    assert duplicate.context["document_form"].errors == {
        "title": ["This agent already has a document with this title."]
    }
    assert 'data-testid="agent-form"' in html(duplicate)
    assert empty.status_code == 400
    assert empty.context["document_form"].errors == {"content": ["This field is required."]}
    assert KnowledgeDocument.objects.for_tenant(tenant).count() == 1


def test_the_dashboard_refuses_a_document_over_the_apis_size_limit_with_the_same_words(web_client, tenant):
    from agents.services import KNOWLEDGE_MAX_CHARACTERS

    agent = factories.AgentFactory(tenant=tenant)
    content = "a" * (KNOWLEDGE_MAX_CHARACTERS + 1)

    response = web_client.post(f"/agents/{agent.pk}/documents/", {"document-title": "All", "document-content": content})

    assert response.status_code == 400
    assert response.context["document_form"].errors == {
        "content": [
            f"The document has {KNOWLEDGE_MAX_CHARACTERS + 1:,} characters; at most {KNOWLEDGE_MAX_CHARACTERS:,} "
            "are allowed. Split it into several documents."
        ]
    }
    assert not KnowledgeDocument.objects.for_tenant(tenant).exists()


def test_a_document_of_another_agent_cannot_be_removed_through_this_one(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    other_document = factories.KnowledgeDocumentFactory(agent=factories.AgentFactory(tenant=tenant))

    response = web_client.post(f"/agents/{agent.pk}/documents/{other_document.pk}/delete/")

    assert response.status_code == 404
    assert KnowledgeDocument.objects.dangerously_unscoped().filter(pk=other_document.pk).exists()


def test_viewer_cannot_change_the_knowledge_base(viewer_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    document = factories.KnowledgeDocumentFactory(agent=agent)

    added = viewer_client.post(f"/agents/{agent.pk}/documents/", {"document-title": "X", "document-content": "Y"})
    removed = viewer_client.post(f"/agents/{agent.pk}/documents/{document.pk}/delete/")

    assert (added.status_code, removed.status_code) == (403, 403)
    assert list(KnowledgeDocument.objects.for_tenant(tenant)) == [document]


# --- voices --------------------------------------------------------------------------------------


def test_voices_page_lists_platform_and_own_voices_only(web_client, tenant, other_tenant):
    factories.VoiceFactory(name="Ada")
    cloned = factories.VoiceFactory(tenant=tenant, name="Sarah", reference_audio="voices/reference/sarah.wav")
    factories.VoiceFactory(tenant=tenant, name="Piper Joe", provider=Voice.Provider.PIPER)
    factories.VoiceFactory(tenant=other_tenant, name="Globex voice")

    response = web_client.get("/voices/")

    assert response.status_code == 200
    assert response.context["page_title"] == "Voices"
    assert [row[0].name for row in response.context["rows"]] == ["Ada", "Piper Joe", "Sarah"]
    page = html(response)
    assert 'data-testid="voices-table"' in page
    assert 'data-testid="voice-upload-form"' in page
    assert "Globex voice" not in page
    assert "Built-in" in page
    assert "Cloned" in page
    assert f'<audio controls preload="none" src="/voices/{cloned.pk}/preview.wav"' in page
    assert "no TTS node is configured" in page.replace("No TTS", "no TTS")


def test_a_chatterbox_voice_says_piper_speaks_it_without_a_tts_node(web_client, tenant, settings):
    settings.CHATTERBOX_URL = ""
    factories.VoiceFactory(name="Default female")  # Chatterbox, like seed_demo's
    factories.VoiceFactory(tenant=tenant, name="Piper Joe", provider=Voice.Provider.PIPER)

    response = web_client.get("/voices/")

    speakers = {row[0].name: (row[2], row[3]) for row in response.context["rows"]}
    assert speakers["Default female"] == (
        "Piper's male US English voice (joe)",
        "This Chatterbox voice needs the TTS node (CHATTERBOX_URL), which this deployment does not have: "
        "calls and samples are spoken by Piper instead.",
    )
    assert speakers["Piper Joe"] == ("Piper's male US English voice (joe)", "")
    assert 'data-testid="voice-speaker-note"' in html(response)
    form = html(web_client.get("/agents/new/"))
    assert "Default female (built-in, Chatterbox (GPU node)): on this deployment Piper&#x27;s male US English" in form


def test_a_chatterbox_voice_is_itself_with_a_tts_node(web_client, tenant, settings):
    settings.CHATTERBOX_URL = "http://127.0.0.1:9"
    defaults = settings.VOICE_PIPELINE_DEFAULTS
    settings.VOICE_PIPELINE_DEFAULTS = {**defaults, "tts": {**defaults["tts"], "provider": "chatterbox"}}
    factories.VoiceFactory(name="Default female")

    response = web_client.get("/voices/")

    assert response.context["rows"][0][2:] == ("This voice, on Chatterbox (turbo)", "")
    assert "Default female (built-in, Chatterbox (GPU node))<" in html(web_client.get("/agents/new/"))


def test_voices_page_empty_state(web_client):
    page = html(web_client.get("/voices/"))

    assert "No voices yet" in page
    assert 'data-testid="voices-table"' not in page


def test_without_a_tts_node_the_cloning_form_says_so_up_front_and_is_disabled(web_client, settings):
    settings.CHATTERBOX_URL = ""

    page = html(web_client.get("/voices/"))

    form = page[page.index('data-testid="voice-cloning-unavailable"') :]
    assert "Cloning needs the TTS node." in form
    assert form.index("Cloning needs the TTS node.") < form.index('data-testid="voice-upload-form"')
    assert 'data-testid="voice-upload" disabled' in form
    assert re.search(r'<input type="file" name="reference_audio"[^>]* disabled', form)


def test_cloning_without_a_tts_node_is_refused_before_the_upload_is_read(web_client, tenant, settings, monkeypatch):
    settings.CHATTERBOX_URL = ""
    monkeypatch.setattr(chatterbox_voices, "check_reference_audio", lambda data: pytest.fail("the upload was read"))
    audio = SimpleUploadedFile("sarah.wav", wav_bytes(6.0), "audio/wav")

    response = web_client.post(
        "/voices/",
        {"name": "Sarah", "language": "en-US", "exaggeration": "0.5", "cfg_weight": "0.5", "reference_audio": audio},
    )

    assert response.status_code == 400
    message = "Voice cloning is not available on this deployment: it needs the TTS node (CHATTERBOX_URL)."
    assert response.context["form"].non_field_errors() == [message]
    assert message in html(response)
    assert not Voice.objects.filter(tenant=tenant).exists()


def test_cloning_refuses_what_is_not_audio(web_client, tenant, settings):
    settings.CHATTERBOX_URL = "http://127.0.0.1:9"  # a node is configured: the form itself refuses
    audio = SimpleUploadedFile("notes.txt", b"hello there", "text/plain")

    response = web_client.post(
        "/voices/",
        {"name": "Sarah", "language": "en-US", "exaggeration": "0.5", "cfg_weight": "0.5", "reference_audio": audio},
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"reference_audio": ["Reference audio must be a WAV, FLAC or OGG file."]}
    assert not Voice.objects.filter(tenant=tenant).exists()


def test_cloning_stores_the_nodes_voice_id(web_client, tenant, settings, monkeypatch):
    # The node's own contract is tested against the real node in tests/api/test_voice_upload.py;
    # here the page's wiring: form fields -> voice_clone_create -> the row.
    settings.CHATTERBOX_URL = "http://127.0.0.1:9"
    sent = {}

    def upload_voice(*, data, filename, content_type, name):
        sent.update(data=data, filename=filename, content_type=content_type, name=name)
        return "voice_abc123"

    monkeypatch.setattr(chatterbox_voices, "upload_voice", upload_voice)
    audio = wav_bytes(6.0)

    response = web_client.post(
        "/voices/",
        {
            "name": "Sarah",
            "description": "Reception",
            "language": "en-GB",
            "exaggeration": "0.7",
            "cfg_weight": "0.4",
            "reference_audio": SimpleUploadedFile("sarah.wav", audio, "audio/wav"),
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/voices/"
    voice = Voice.objects.get(tenant=tenant)
    assert (voice.name, voice.description, voice.language, voice.exaggeration, voice.cfg_weight) == (
        "Sarah",
        "Reception",
        "en-GB",
        0.7,
        0.4,
    )
    assert (voice.provider, voice.provider_voice_id) == ("chatterbox", "voice_abc123")
    assert voice.reference_audio.read() == audio
    assert sent == {"data": audio, "filename": "sarah.wav", "content_type": "audio/wav", "name": "Sarah"}


def test_cloning_form_errors_are_inline(web_client, tenant, settings):
    settings.CHATTERBOX_URL = "http://127.0.0.1:9"
    response = web_client.post("/voices/", {"name": "", "language": "en-US", "exaggeration": "5", "cfg_weight": "0.5"})

    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"name", "exaggeration", "reference_audio"}
    assert not Voice.objects.filter(tenant=tenant).exists()


def test_viewer_cannot_clone_and_sees_no_upload_form(viewer_client, tenant):
    factories.VoiceFactory(name="Ada")
    assert 'data-testid="voice-upload-form"' not in html(viewer_client.get("/voices/"))

    audio = SimpleUploadedFile("sarah.wav", wav_bytes(6.0), "audio/wav")
    response = viewer_client.post(
        "/voices/",
        {"name": "Sarah", "language": "en-US", "exaggeration": "0.5", "cfg_weight": "0.5", "reference_audio": audio},
    )

    assert response.status_code == 403
    assert not Voice.objects.filter(tenant=tenant).exists()


@pytest.mark.slow  # loads the runtime and piper (several seconds the first time)
def test_preview_is_a_wav_from_the_offline_engine_and_is_cached(web_client, tenant, monkeypatch):
    voice = factories.VoiceFactory(name="Ada")  # a built-in Chatterbox voice; no node here: piper speaks

    response = web_client.get(f"/voices/{voice.pk}/preview.wav")

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    audio = response.content
    assert audio[:4] == b"RIFF"
    assert audio[8:12] == b"WAVE"
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)
        assert 1.5 < wav.getnframes() / wav.getframerate() < 8.0  # the whole sentence, not a blip

    def no_synthesis(*args, **kwargs):
        raise AssertionError("the cached sample should have been used")

    monkeypatch.setattr(preview, "_synthesize_wav", no_synthesis)
    again = web_client.get(f"/voices/{voice.pk}/preview.wav")
    assert again.status_code == 200
    assert again.content == audio


def test_preview_of_another_tenants_voice_is_404(other_web_client, tenant):
    voice = factories.VoiceFactory(tenant=tenant, name="Sarah")

    response = other_web_client.get(f"/voices/{voice.pk}/preview.wav")

    assert response.status_code == 404
    assert cache.get(preview._preview_key(voice, django_settings.VOICE_PIPELINE_DEFAULTS["tts"])) is None


@pytest.mark.slow
def test_preview_failure_is_a_clear_422(web_client, monkeypatch):
    from voice.engines import piper_tts

    def broken(text):
        raise RuntimeError("espeak-ng data missing")

    monkeypatch.setattr(piper_tts, "_load_and_start", broken)
    voice = factories.VoiceFactory(name="Ada")

    response = web_client.get(f"/voices/{voice.pk}/preview.wav")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "voice_preview_failed"
    assert error["message"].startswith("This voice cannot be previewed right now:")
    assert "espeak-ng data missing" in error["message"]


# --- the engine summary agrees with the runtime --------------------------------------------------


CASES = [
    ({}, {}, None),
    ({"chatterbox_url": "http://127.0.0.1:9"}, {"tts": {"provider": "chatterbox"}}, None),
    ({"chatterbox_url": "http://127.0.0.1:9"}, {"tts": {"provider": "chatterbox"}}, Voice.Provider.PIPER),
    ({"anthropic_api_key": "sk-test"}, {"llm": {"provider": "anthropic"}}, None),
    ({}, {"llm": {"provider": "anthropic"}, "stt": {"provider": "deepgram"}, "tts": {"provider": "chatterbox"}}, None),
    ({"deepgram_api_key": "dg-test"}, {"stt": {"provider": "deepgram"}}, None),
    ({"openai_base_url": "http://127.0.0.1:9/v1"}, {"llm": {"provider": "openai_compatible", "model": "m"}}, None),
]


@pytest.mark.parametrize(("secrets", "overrides", "voice_provider"), CASES)
async def test_engine_summary_matches_what_the_runtime_builds(secrets, overrides, voice_provider):
    from voice import engines

    voice = Voice(provider=voice_provider, provider_voice_id="joe") if voice_provider else None
    agent = Agent(name="a", system_prompt="x", settings=overrides, voice=voice)
    summary = selectors.agent_engines(agent=agent, keys=frozenset(secrets))
    pipeline = agent.effective_settings(django_settings.VOICE_PIPELINE_DEFAULTS)
    voice_data = {"provider": voice.provider, "provider_voice_id": "joe"} if voice else None
    built = {
        "stt": engines.build_stt(pipeline["stt"], secrets=secrets),
        "llm": engines.build_llm(pipeline["llm"], secrets=secrets),
        "tts": engines.build_tts(pipeline["tts"], voice=voice_data, secrets=secrets),
    }
    try:
        labels = engines.provider_labels(**built)
        assert {stage: (e.provider, e.offline) for stage, e in summary.items()} == {
            stage: (label["provider"], label["offline"]) for stage, label in labels.items()
        }
    finally:
        for engine in built.values():
            await engine.aclose()


def test_provider_keys_names_what_the_runtime_finds(tenant, settings):
    from agents.secrets import provider_secrets

    settings.DEEPGRAM_API_KEY = "dg-test"
    settings.ANTHROPIC_API_KEY = ""
    settings.CHATTERBOX_URL = "http://127.0.0.1:9"
    names = {"deepgram_api_key", "anthropic_api_key", "chatterbox_url", "openai_base_url"}

    assert selectors.provider_keys(tenant=tenant) == {"deepgram_api_key", "chatterbox_url"}
    assert set(provider_secrets(tenant=tenant)) & names == selectors.provider_keys(tenant=tenant)


def test_numbers_without_agents_are_not_shown_on_an_agent(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    PhoneNumber.objects.create(tenant=tenant, e164="+15550002222")

    page = html(web_client.get(f"/agents/{agent.pk}/"))

    assert "+15550002222" not in page


def test_tools_json_nested_thousands_deep_is_an_inline_error_not_a_crash(web_client, tenant):
    response = web_client.post("/agents/new/", form_data(tools="[" * 50_000 + "]" * 50_000))

    assert response.status_code == 400
    assert Agent.objects.for_tenant(tenant).count() == 0
    [error] = response.context["form"].errors["tools"]
    assert "deeper than 64 levels" in error
