"""Dashboard forms: an agent's configuration, its knowledge documents, and cloning a voice.

The forms only parse and check input, with the same validators the REST API's serializers use
(agents/schemas.py); agents/services.py does the writing, and its refusals are shown on the form
by `add_service_error`.
"""

import copy
import json

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from agents import engines, selectors
from agents.models import Agent, KnowledgeDocument, Voice
from agents.presentation import speaks_as
from agents.schemas import validate_agent_settings, validate_tools, validate_transfer_targets
from core import jsonsafe
from core.errors import ApplicationError
from core.web import forms as web_forms

TOOLS_EXAMPLE = [
    {
        "name": "check_availability",
        "description": "Find free appointment slots on a given day.",
        "parameters": {
            "type": "object",
            "properties": {"date": {"type": "string", "description": "The day, as YYYY-MM-DD"}},
            "required": ["date"],
        },
        "webhook_url": "https://example.com/hooks/availability",
        "method": "POST",
        "timeout_seconds": 5,
        "filler": "One moment while I check the calendar.",
    }
]
TRANSFER_TARGETS_EXAMPLE = [
    {"name": "Front desk", "destination": "ext:1001", "type": "warm", "description": "Reception staff"},
    {"name": "Billing", "destination": "+15551234567", "type": "blind"},
]
ADVANCED_SETTINGS_EXAMPLE = {"vad": {"threshold": 0.6}, "conversation": {"greeting_enabled": True}}

# Form field -> (settings section, key): the pipeline settings the form asks for one by one.
SETTING_FIELDS = {
    "language": ("stt", "language"),
    "stt_provider": ("stt", "provider"),
    "stt_model": ("stt", "model"),
    "llm_provider": ("llm", "provider"),
    "llm_model": ("llm", "model"),
    "llm_temperature": ("llm", "temperature"),
    "llm_max_tokens": ("llm", "max_tokens"),
    "tts_provider": ("tts", "provider"),
    "tts_model": ("tts", "model"),
    "tool_timeout": ("tools", "webhook_timeout_seconds"),
}
SERVICE_FIELDS = (
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
# Where a service's field error belongs on the form when the names differ.
FIELD_ALIASES = {"voice_id": "voice", "settings": "advanced_settings"}


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class JSONTextField(forms.CharField):
    """JSON typed into a textarea: parsed with a message that says where it breaks, then type-checked."""

    def __init__(self, *, kind: type, example, placeholder: str, **kwargs):
        self.kind = kind
        self.example = pretty_json(example)  # shown under the field as a format to copy
        attrs = {"rows": 8, "class": "code", "spellcheck": "false", "placeholder": placeholder}
        kwargs.setdefault("widget", forms.Textarea(attrs=attrs))
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | dict):
            return pretty_json(value) if value else ""
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return self.kind()
        try:
            data = jsonsafe.loads(text)
        except jsonsafe.UnsafeJSON as exc:
            raise ValidationError(f"This JSON cannot be used: {exc}", code="invalid_json") from exc
        except json.JSONDecodeError as exc:
            raise ValidationError(
                f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).", code="invalid_json"
            ) from exc
        if not isinstance(data, self.kind):
            shape = "an array: [ … ]" if self.kind is list else "an object: { … }"
            raise ValidationError(f"This must be a JSON {shape}.", code="invalid_type")
        return data


class VoiceChoiceField(forms.ModelChoiceField):
    keys: frozenset[str] = frozenset()  # the tenant's provider keys (selectors.provider_keys), set by the form

    def label_from_instance(self, voice: Voice) -> str:
        owner = "built-in" if voice.tenant_id is None else "your voice"
        label = f"{voice.name} ({owner}, {voice.get_provider_display()})"
        speaker, note = speaks_as(voice, selectors.voice_engine(voice=voice, keys=self.keys))
        return f"{label}: on this deployment {speaker} speaks instead" if note else label


def _defaults(section: str) -> dict:
    return settings.VOICE_PIPELINE_DEFAULTS.get(section, {})


def _default_choice(section: str, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The choices with a first "platform default" entry that names the default."""
    current = dict(choices).get(_defaults(section).get("provider", ""), "not set")
    return [("", f"Platform default ({current})"), *choices]


class AgentForm(forms.Form):
    """Everything a business sets on an agent; `service_fields()` gives agent_create / agent_update's arguments."""

    name = forms.CharField(max_length=255, help_text="How you recognise this agent, e.g. “Front desk”.")
    status = forms.ChoiceField(
        choices=Agent.Status.choices, initial=Agent.Status.ACTIVE, help_text=Agent._meta.get_field("status").help_text
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="A note for your team; callers never hear it.",
    )
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Instructions the agent follows on every call: who it is, what it may do, its tone.",
    )
    greeting_message = forms.CharField(
        label="Greeting (first message)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=Agent._meta.get_field("greeting_message").help_text,
    )
    voicemail_message = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=Agent._meta.get_field("voicemail_message").help_text,
    )
    voice = VoiceChoiceField(
        queryset=Voice.objects.none(),
        required=False,
        empty_label="Platform default voice",
        help_text="How the agent sounds. Listen to each voice on the Voices page.",
    )
    language = forms.CharField(
        max_length=20,
        required=False,
        help_text="The language callers speak, e.g. en-US. Empty: the platform default.",
    )
    stt_provider = forms.ChoiceField(
        label="Speech recognition",
        required=False,
        help_text="Turns the caller's speech into text. Whisper runs on this server with no key (offline).",
    )
    stt_model = forms.CharField(
        label="Speech recognition model",
        max_length=100,
        required=False,
        help_text=f"Deepgram's model name, e.g. {engines.ENGINES[engines.DEEPGRAM].default_model}. "
        "Empty: the platform default.",
    )
    llm_provider = forms.ChoiceField(
        label="Language model",
        required=False,
        help_text="Decides what the agent says. The local responder answers from your greeting, "
        "knowledge base and tools without any key (offline).",
    )
    llm_model = forms.CharField(
        label="Language model name",
        max_length=100,
        required=False,
        help_text=f"e.g. {engines.ENGINES[engines.ANTHROPIC].default_model}. Empty: the platform default.",
    )
    llm_temperature = forms.FloatField(
        label="Creativity (temperature)",
        required=False,
        min_value=0,
        max_value=1,
        help_text="0 to 1: lower is more predictable. Empty: the platform default.",
    )
    llm_max_tokens = forms.IntegerField(
        label="Longest reply (tokens)",
        required=False,
        min_value=1,
        max_value=8192,
        help_text="Upper limit on one reply's length. Empty: the platform default.",
    )
    tts_provider = forms.ChoiceField(
        label="Speech synthesis",
        required=False,
        help_text="Speaks the agent's replies. Piper runs on this server with no GPU node (offline).",
    )
    tts_model = forms.ChoiceField(
        label="Chatterbox model",
        required=False,
        choices=[("", "Platform default"), *((model, model.capitalize()) for model in engines.model_choices("tts"))],
        help_text="Only used with Chatterbox.",
    )
    tools = JSONTextField(
        label="Tool definitions (JSON)",
        kind=list,
        example=TOOLS_EXAMPLE,
        placeholder="Empty: no tools. Open “Example” below for the format.",
        validators=[validate_tools],
        help_text='A JSON array of tools the agent may call. Each tool needs "name" (letters, digits, _ or -), '
        '"description", "parameters" (a JSON Schema object: {"type": "object", "properties": {…}}) and '
        '"webhook_url"; "method", "timeout_seconds" (up to 60) and "filler" (said while it runs) are optional.',
    )
    tool_timeout = forms.FloatField(
        label="Tool timeout (seconds)",
        required=False,
        min_value=0.1,
        max_value=60,
        help_text="How long a tool's webhook may take before the agent gives up. Empty: the platform default.",
    )
    transfer_targets = JSONTextField(
        label="Transfer targets (JSON)",
        kind=list,
        example=TRANSFER_TARGETS_EXAMPLE,
        placeholder="Empty: the agent cannot transfer. Open “Example” below for the format.",
        validators=[validate_transfer_targets],
        help_text='A JSON array of people or lines the agent may transfer callers to: "name", "destination" '
        '(+15551234567 or ext:1001), optional "type" ("blind" or "warm") and "description".',
    )
    advanced_settings = JSONTextField(
        label="Other settings (JSON)",
        kind=dict,
        example=ADVANCED_SETTINGS_EXAMPLE,
        placeholder="Empty: the platform defaults.",
        validators=[validate_agent_settings],
        help_text='Other pipeline settings by section ("stt", "llm", "tts", "vad", "conversation", "tools", '
        '"analysis"). The fields above take precedence over the same keys here.',
    )

    def __init__(self, *args, tenant, agent: Agent | None = None, read_only: bool = False, **kwargs):
        if agent is not None:
            kwargs["initial"] = {**agent_initial(agent), **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        self.fields["voice"].queryset = selectors.voice_list(tenant=tenant)
        self.fields["voice"].keys = selectors.provider_keys(tenant=tenant)
        for stage in ("stt", "llm", "tts"):
            self.fields[f"{stage}_provider"].choices = _default_choice(stage, engines.form_choices(stage))
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean(self):
        cleaned = super().clean()
        if "advanced_settings" in cleaned:
            merged = self._merged_settings(cleaned)
            try:
                validate_agent_settings(merged)
            except ValidationError as exc:
                self.add_error("advanced_settings", exc)
            else:
                cleaned["settings"] = merged
        return cleaned

    def _merged_settings(self, cleaned: dict) -> dict:
        merged = copy.deepcopy(cleaned["advanced_settings"])
        for field, (section, key) in SETTING_FIELDS.items():
            value = cleaned.get(field)
            if value not in ("", None):
                merged.setdefault(section, {})[key] = value
        return merged

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in SERVICE_FIELDS}


def agent_initial(agent: Agent) -> dict:
    """The form's values for a saved agent: the settings split into their own fields and the rest."""
    initial = {name: getattr(agent, name) for name in SERVICE_FIELDS if name not in ("voice", "settings")}
    initial["voice"] = agent.voice_id
    rest = copy.deepcopy(agent.settings or {})
    for field, (section, key) in SETTING_FIELDS.items():
        values = rest.get(section)
        if isinstance(values, dict) and key in values:
            initial[field] = values.pop(key)
    initial["advanced_settings"] = {section: values for section, values in rest.items() if values}
    return initial


class KnowledgeDocumentForm(forms.Form):
    """A document from typed text, an uploaded file or a web page: exactly one of the three."""

    title = forms.CharField(max_length=255, help_text="e.g. “Opening hours” or “Price list”.")
    content = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Plain text the agent answers from. Write FAQ entries as lines like “Q: … A: …”.",
    )
    file = forms.FileField(
        label="Or upload a file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".txt,.md,.markdown,.csv,.html,.htm,.pdf,.docx"}),
        help_text="Text, Markdown, CSV, HTML, PDF or Word (.docx). Its text becomes the document.",
    )
    url = forms.URLField(
        label="Or import a web page",
        required=False,
        assume_scheme="https",
        help_text="The page's text is fetched once, now (public addresses only).",
    )
    source_url = forms.URLField(
        label="Source link",
        required=False,
        assume_scheme="https",
        help_text=KnowledgeDocument._meta.get_field("source_url").help_text,
    )

    def clean(self):
        cleaned = super().clean()
        given = [name for name in ("content", "file", "url") if cleaned.get(name)]
        if not given and not self.errors:
            self.add_error("content", forms.Field.default_error_messages["required"])
        elif len(given) > 1:
            raise forms.ValidationError("Type the text, upload a file or give a web page's address: one of the three.")
        return cleaned


class VoiceCloneForm(forms.Form):
    """The fields of the API's multipart POST /v1/voices (VoiceCloneInput)."""

    name = forms.CharField(max_length=100, help_text="e.g. “Sarah from reception”.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    language = forms.CharField(max_length=20, initial="en-US", help_text="The language of the recording, e.g. en-US.")
    exaggeration = forms.FloatField(
        min_value=0.25, max_value=2.0, initial=0.5, help_text=Voice._meta.get_field("exaggeration").help_text
    )
    cfg_weight = forms.FloatField(
        label="Pace (CFG weight)",
        min_value=0.0,
        max_value=1.0,
        initial=0.5,
        help_text=Voice._meta.get_field("cfg_weight").help_text,
    )
    reference_audio = forms.FileField(
        widget=forms.ClearableFileInput(attrs={"accept": ".wav,.flac,.ogg,audio/wav,audio/x-wav,audio/flac,audio/ogg"}),
        help_text="5 to 60 seconds of one person speaking clearly, with no music or noise: WAV, FLAC or OGG, "
        "at least 16 kHz.",
    )

    def __init__(self, *args, available: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.available = available
        if not available:  # no TTS node: nothing to fill in that could be sent
            for field in self.fields.values():
                field.disabled = True


def add_service_error(form: forms.Form, exc: ApplicationError | ValidationError) -> None:
    """A service's refusal on an agents form (the service's `voice_id` is the form's `voice`...)."""
    web_forms.add_service_error(form, exc, FIELD_ALIASES)
