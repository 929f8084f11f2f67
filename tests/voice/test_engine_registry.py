"""The engine registry (agents/engines.py) is the one source of the engines' facts, and its `choose` the one
decision of which engine runs: the runtime builds what the dashboard shows, the settings schema and form offer
what the registry declares, and every secret comes from agents.secrets.
"""

import logging

import pytest
from django.conf import settings as django_settings
from django.utils.module_loading import import_string
from livekit.agents import llm
from livekit.plugins import silero

from agents import engines as registry
from agents import selectors
from agents.forms import AgentForm
from agents.models import Agent, Voice
from agents.schemas import SETTINGS_SCHEMA
from agents.secrets import PLATFORM_SETTINGS, provider_secrets, secret_names
from integrations.models import ProviderCredential
from tests import factories
from tests.voice.fakes.anthropic import FakeAnthropic
from tests.voice.fakes.audio import silence_frames
from tests.voice.fakes.chatterbox import FakeChatterbox
from tests.voice.fakes.openai_compat import FakeOpenAICompatible
from voice import engines
from voice.engines import breaker

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there, and nothing below dials it
# One value for every secret some engine cannot run without.
ALL_SECRETS = {
    "deepgram_api_key": "dg-test",
    "anthropic_api_key": "sk-test",
    "openai_base_url": f"{UNREACHABLE}/v1",
    "chatterbox_url": UNREACHABLE,
}
BUILT_STAGES = ("stt", "llm", "tts")
REAL = [engine for engine in registry.ENGINES.values() if not engine.offline]


@pytest.fixture(autouse=True)
def _fresh_breakers():
    breaker.reset_breakers()
    yield
    breaker.reset_breakers()


def _build(stage: str, config: dict, secrets: dict, voice: dict | None = None, **context):
    if stage == "stt":
        return engines.build_stt(config, secrets=secrets)
    if stage == "llm":
        return engines.build_llm(config, secrets=secrets, **context)
    return engines.build_tts(config, voice=voice, secrets=secrets)


def _members(engine) -> list:
    return engine.members if hasattr(engine, "members") else [engine]


def _chat(text: str) -> llm.ChatContext:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content=text)
    return ctx


# --- the registry itself -------------------------------------------------------------------------


@pytest.mark.parametrize("stage", registry.STAGES)
def test_each_stage_has_exactly_one_offline_engine_and_it_comes_last(stage):
    engines_of_stage = registry.stage_engines(stage)

    assert [engine.offline for engine in engines_of_stage].count(True) == 1
    assert engines_of_stage[-1] is registry.offline_engine(stage)
    assert registry.offline_engine(stage).secrets == ()  # it runs with no key


@pytest.mark.parametrize("engine", registry.ENGINES.values(), ids=list(registry.ENGINES))
def test_every_builder_is_a_dotted_path_to_a_function_in_the_voice_engines(engine):
    # The embedding engine serves the knowledge base of the agents app too, which sits below voice: core.
    assert engine.builder.startswith("core." if engine.stage == registry.EMBEDDINGS else "voice.engines.")
    assert callable(import_string(engine.builder))


@pytest.mark.parametrize("engine", REAL, ids=[engine.name for engine in REAL])
def test_a_real_provider_declares_its_secrets_default_model_breaker_and_note(engine):
    assert engine.secrets
    assert set(engine.secrets) <= set(PLATFORM_SETTINGS)  # agents.secrets can find each of them
    assert engine.default_model
    assert engine.breaker is not None
    assert engine.missing


def test_the_breakers_policies_are_the_registrys_under_the_same_names():
    assert {engine.name: engine.breaker for engine in REAL} == breaker.POLICIES
    threshold, timeout = registry.ENGINES[registry.OPENAI_COMPATIBLE].breaker
    made = breaker.breaker_for(registry.OPENAI_COMPATIBLE, "http://llm.internal/v1#m")
    assert (made.failure_threshold, made.recovery_timeout) == (threshold, timeout)


# --- every engine builds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "engine",
    [e for e in registry.ENGINES.values() if e.stage not in ("vad", registry.EMBEDDINGS)],
    ids=lambda engine: engine.name,
)
async def test_every_engine_is_built_by_its_stage_and_reports_its_registry_name(engine):
    config = {"provider": registry.OFFLINE if engine.offline else engine.name}
    built = _build(engine.stage, config, ALL_SECRETS)
    try:
        label = engines.provider_labels(**{engine.stage: built})[engine.stage]
        offline = registry.offline_engine(engine.stage).name
        chain = [engine.name] if engine.offline else [engine.name, offline]
        assert label == {"provider": engine.name, "offline": engine.offline, "chain": chain}
        if not engine.offline:  # no model in the settings: the registry's default is the one built
            assert _members(built)[0].model == engine.default_model
    finally:
        await built.aclose()


def test_the_vad_stage_builds_silero():
    assert isinstance(engines.build_vad({"threshold": 0.6}), silero.VAD)


async def test_claude_without_a_model_in_the_settings_asks_the_api_for_the_registrys_default():
    async with FakeAnthropic() as server:
        secrets = {"anthropic_api_key": "fake-ant-test", "anthropic_base_url": server.url}
        built = engines.build_llm({"provider": registry.ANTHROPIC}, secrets=secrets)
        reply = await built.chat(chat_ctx=_chat("Hi")).collect()
        await built.aclose()

    assert reply.text == "Hello from Claude."
    assert [r["body"]["model"] for r in server.requests] == [registry.ENGINES[registry.ANTHROPIC].default_model]


async def test_an_openai_compatible_endpoint_is_reported_in_the_spelling_the_settings_use():
    async with FakeOpenAICompatible() as server:
        built = engines.build_llm({"provider": "openai_compatible"}, secrets={"openai_base_url": server.base_url})
        reply = await built.chat(chat_ctx=_chat("Hi")).collect()
        labels = engines.provider_labels(llm=built)["llm"]
        await built.aclose()

    assert reply.text == "Hello from the local model."
    assert labels["chain"] == ["openai_compatible", "offline-responder"]
    [request] = server.requests
    assert request["body"]["model"] == registry.ENGINES[registry.OPENAI_COMPATIBLE].default_model


async def test_the_chatterbox_node_speaks_with_the_sections_default_voice_when_the_agent_has_none():
    async with FakeChatterbox() as node:
        config = {"provider": "chatterbox", "default_voice_id": "default_male_2"}
        built = engines.build_tts(config, voice=None, secrets={"chatterbox_url": node.url})
        frame = await built.synthesize("Hello.").collect()
        await built.aclose()

    assert frame.duration > 0
    [request] = node.requests
    assert request["body"]["voice_id"] == "default_male_2"


@pytest.mark.slow  # loads piper, Whisper and Silero (a few seconds the first time)
async def test_the_offline_engines_really_work_from_their_builders():
    responder = engines.build_llm(
        {"provider": "offline"}, secrets={}, agent_profile={"greeting_message": "Thanks for calling."}
    )
    piper = engines.build_tts({"provider": "offline"}, voice=None, secrets={})
    whisper = engines.build_stt({"provider": "offline"}, secrets={})
    try:
        greeting = await responder.chat(chat_ctx=_chat("Hello")).collect()
        speech = await piper.synthesize("Thank you for calling.").collect()
        heard = await whisper.recognize(silence_frames(0.5, sample_rate=16000))
    finally:
        for built in (responder, piper, whisper):
            await built.aclose()

    assert greeting.text
    assert speech.sample_rate == 22050 and speech.duration > 0.5
    assert heard.alternatives[0].text == ""  # the model ran on silence and heard nothing
    assert isinstance(engines.build_vad({}), silero.VAD)


# --- the dashboard shows what the runtime builds -------------------------------------------------------


def _table():
    for stage in BUILT_STAGES:
        for wanted in [*registry.provider_choices(stage), ""]:
            for with_secrets in (True, False):
                voices = ("", "piper", "chatterbox") if stage == "tts" else ("",)
                for voice_provider in voices:
                    yield stage, wanted, with_secrets, voice_provider


@pytest.mark.parametrize(("stage", "wanted", "with_secrets", "voice_provider"), list(_table()))
async def test_the_dashboards_engine_is_the_one_the_runtime_builds(stage, wanted, with_secrets, voice_provider):
    secrets = ALL_SECRETS if with_secrets else {}
    voice = Voice(provider=voice_provider, provider_voice_id="v1") if voice_provider else None
    agent = Agent(name="a", system_prompt="x", settings={stage: {"provider": wanted}} if wanted else {}, voice=voice)
    shown = selectors.agent_engines(agent=agent, keys=frozenset(secrets))[stage]
    config = agent.effective_settings(django_settings.VOICE_PIPELINE_DEFAULTS)[stage]
    voice_data = {"provider": voice_provider, "provider_voice_id": "v1"} if voice_provider else None
    built = _build(stage, config, secrets, voice=voice_data)
    try:
        label = engines.provider_labels(**{stage: built})[stage]
        assert (shown.provider, shown.offline) == (label["provider"], label["offline"])
        assert label["chain"][0] == shown.provider
        if not shown.offline:
            assert _members(built)[0].model == shown.model
        real_wanted = wanted not in ("", registry.OFFLINE)
        assert bool(shown.note) == (real_wanted and not with_secrets and voice_provider != "piper")
    finally:
        await built.aclose()


def test_a_missing_secret_is_named_in_the_note_and_the_offline_engine_runs():
    choice = registry.choose("stt", {"provider": "deepgram", "model": "nova-3"}, set())

    assert (choice.provider, choice.model, choice.wanted) == ("offline-whisper", "tiny.en", "deepgram")
    assert choice.note == "Deepgram is chosen, but no Deepgram API key is configured."


def test_the_settings_model_wins_over_the_default_only_for_the_engine_that_runs():
    chosen = registry.choose("llm", {"provider": "anthropic", "model": "claude-haiku-4-5"}, {"anthropic_api_key"})
    fallen_back = registry.choose("tts", {"provider": "chatterbox", "model": "standard"}, set())

    assert (chosen.provider, chosen.model) == ("anthropic", "claude-haiku-4-5")
    assert (fallen_back.provider, fallen_back.model) == ("offline-piper", "en_US joe")


# --- the schema and the form offer the registry's engines ----------------------------------------------


@pytest.mark.parametrize("stage", BUILT_STAGES)
def test_the_settings_schema_accepts_exactly_the_registrys_providers(stage):
    enum = SETTINGS_SCHEMA["properties"][stage]["properties"]["provider"]["enum"]
    real = {engine.name for engine in registry.stage_engines(stage) if not engine.offline}

    assert set(enum) == real | {registry.OFFLINE}
    assert len(enum) == len(set(enum))


def test_the_chatterbox_models_are_the_only_ones_the_schema_and_form_accept(tenant):
    models = list(registry.ENGINES[registry.CHATTERBOX].models)

    assert SETTINGS_SCHEMA["properties"]["tts"]["properties"]["model"]["enum"] == models
    assert [value for value, _ in AgentForm(tenant=tenant).fields["tts_model"].choices] == ["", *models]


@pytest.mark.parametrize("stage", BUILT_STAGES)
def test_the_form_offers_the_schemas_providers_with_the_registrys_labels(tenant, stage):
    choices = AgentForm(tenant=tenant).fields[f"{stage}_provider"].choices
    enum = SETTINGS_SCHEMA["properties"][stage]["properties"]["provider"]["enum"]

    assert choices[0][0] == ""  # the platform default
    assert [value for value, _ in choices[1:]] == enum
    assert dict(choices[1:])[registry.OFFLINE] == registry.offline_engine(stage).choice_label


# --- secrets: one lookup ----------------------------------------------------------------------------


def _platform(settings, **values):
    for name, setting in PLATFORM_SETTINGS.items():
        setattr(settings, setting, values.get(name, ""))


def test_secret_names_are_exactly_the_secrets_the_runtime_gets(tenant, settings):
    _platform(settings, anthropic_api_key="sk-platform", chatterbox_url=UNREACHABLE, openai_api_key="")
    factories.ProviderCredentialFactory(tenant=tenant, provider="deepgram", secret={"api_key": "dg-tenant-0000000"})

    assert secret_names(tenant=tenant) == {"anthropic_api_key", "chatterbox_url", "deepgram_api_key"}
    assert set(provider_secrets(tenant=tenant)) == secret_names(tenant=tenant)


def test_the_tenants_own_key_wins_and_another_tenants_is_never_used(tenant, other_tenant, settings):
    _platform(settings, anthropic_api_key="sk-platform")
    factories.ProviderCredentialFactory(tenant=tenant, provider="anthropic", secret={"api_key": "sk-ours-00000000"})
    factories.ProviderCredentialFactory(
        tenant=other_tenant, provider="deepgram", secret={"api_key": "dg-theirs-000000"}
    )

    assert provider_secrets(tenant=tenant) == {"anthropic_api_key": "sk-ours-00000000"}
    assert provider_secrets(tenant=other_tenant) == {
        "anthropic_api_key": "sk-platform",
        "deepgram_api_key": "dg-theirs-000000",
    }
    assert secret_names(tenant=tenant) == {"anthropic_api_key"}


def test_only_the_named_secrets_are_decrypted(tenant, settings, monkeypatch):
    _platform(settings)
    factories.ProviderCredentialFactory(tenant=tenant, provider="anthropic", secret={"api_key": "sk-ours-00000000"})
    factories.ProviderCredentialFactory(tenant=tenant, provider="deepgram", secret={"api_key": "dg-ours-00000000"})
    from agents import secrets as secrets_module

    opened = []
    real_decrypt = secrets_module.decrypt
    monkeypatch.setattr(secrets_module, "decrypt", lambda c: opened.append(c.provider) or real_decrypt(c))

    assert provider_secrets(tenant=tenant, names=["anthropic_api_key"]) == {"anthropic_api_key": "sk-ours-00000000"}
    assert opened == ["anthropic"]


def test_an_undecryptable_credential_gives_way_to_the_platforms_key_and_logs_no_secret(tenant, settings, caplog):
    _platform(settings, anthropic_api_key="sk-platform")
    broken = factories.ProviderCredentialFactory(
        tenant=tenant, name="A_BROKEN", provider="anthropic", secret={"api_key": "sk-broken-0000000"}
    )
    ProviderCredential.objects.dangerously_unscoped().filter(pk=broken.pk).update(ciphertext=b"\0" * 48)
    factories.ProviderCredentialFactory(
        tenant=tenant,
        name="B_FAILED",
        provider="anthropic",
        secret={"api_key": "sk-failed-0000000"},
        verification=ProviderCredential.Verification.FAILED,
    )

    with caplog.at_level(logging.WARNING, logger="agents.secrets"):
        found = provider_secrets(tenant=tenant)

    assert found == {"anthropic_api_key": "sk-platform"}
    assert "A_BROKEN" in caplog.text
    assert "sk-" not in caplog.text
