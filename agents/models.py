"""Agents (an AI configuration for one use case), voices and knowledge-base documents."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from agents.schemas import validate_agent_settings, validate_tools, validate_transfer_targets
from core.db import BaseModel
from tenants.models import Tenant, TenantOwnedModel, TenantOwnedQuerySet


class VoiceQuerySet(models.QuerySet):
    def available_to(self, tenant: Tenant):
        """Platform voices plus the tenant's own."""
        return self.filter(Q(tenant__isnull=True) | Q(tenant=tenant), is_active=True)


class Voice(BaseModel):
    """A TTS voice: platform-wide (no tenant) or a tenant's own, optionally cloned from reference audio."""

    class Provider(models.TextChoices):
        CHATTERBOX = "chatterbox", "Chatterbox (GPU node)"
        PIPER = "piper", "Piper (offline engine)"

    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: a platform voice every tenant may use.",
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    provider = models.CharField(max_length=30, choices=Provider.choices, default=Provider.CHATTERBOX)
    provider_voice_id = models.CharField(
        max_length=100, help_text="The voice's id at the TTS provider, e.g. 'default_female_1'."
    )
    language = models.CharField(max_length=20, default="en-US")
    reference_audio = models.FileField(
        upload_to="voices/reference/",
        blank=True,
        help_text="Reference recording for voice cloning (WAV, 5-30 s of clean speech).",
    )
    exaggeration = models.FloatField(
        default=0.5, help_text="Chatterbox emotional intensity, 0.25-2.0 (0.5 is neutral)."
    )
    cfg_weight = models.FloatField(
        default=0.5, help_text="Chatterbox classifier-free guidance weight, 0-1; lower speaks slower and calmer."
    )
    is_active = models.BooleanField(default=True)

    objects = VoiceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider", "provider_voice_id"], name="voice_unique_tenant_provider_id"
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_voice_id"],
                condition=Q(tenant__isnull=True),
                name="voice_unique_platform_provider_id",
            ),
            models.CheckConstraint(
                condition=Q(exaggeration__gte=0.25, exaggeration__lte=2.0), name="voice_exaggeration_range"
            ),
            models.CheckConstraint(
                condition=Q(cfg_weight__gte=0.0, cfg_weight__lte=1.0), name="voice_cfg_weight_range"
            ),
            models.CheckConstraint(condition=Q(provider__in=["chatterbox", "piper"]), name="voice_provider_valid"),
        ]

    def __str__(self) -> str:
        owner = self.tenant.name if self.tenant_id else "platform"
        return f"{self.name} ({owner})"


class AgentQuerySet(TenantOwnedQuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)


class Agent(TenantOwnedModel):
    """An AI agent: what it says, how it sounds, which tools it may call and where it transfers."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=50,
        choices=Status.choices,
        default=Status.ACTIVE,
        db_index=True,
        help_text="A paused agent does not answer or place calls.",
    )
    voice = models.ForeignKey(
        Voice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agents",
        help_text="Empty: the platform's default voice.",
    )
    system_prompt = models.TextField(help_text="Instructions the LLM follows on every call.")
    greeting_message = models.TextField(
        blank=True, help_text="First words the agent says when a call connects. Empty: wait for the caller."
    )
    voicemail_message = models.TextField(
        blank=True, help_text="Left on an answering machine on outbound calls. Empty: hang up instead."
    )
    tools = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_tools],
        help_text='List of tools: {"name", "description", "parameters" (JSON Schema object), "webhook_url", '
        '"method", "timeout_seconds", "filler"}. Each is called as a webhook to your backend.',
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_agent_settings],
        help_text='Per-agent overrides of the platform pipeline defaults, by section: "stt", "llm", "tts", '
        '"vad", "conversation", "tools", e.g. {"llm": {"temperature": 0.3}}.',
    )
    transfer_targets = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_transfer_targets],
        help_text='Where the agent may transfer: [{"name", "destination" (E.164 or "ext:1001"), '
        '"type" ("blind" or "warm"), "description"}].',
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Soft delete: hidden from the tenant, kept for calls."
    )

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["tenant", "status"], name="agent_tenant_status_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=Q(deleted_at__isnull=True),
                name="agent_unique_live_name",
                violation_error_message="An agent with this name already exists.",
            ),
            models.CheckConstraint(condition=~Q(system_prompt=""), name="agent_system_prompt_not_empty"),
            models.CheckConstraint(condition=Q(status__in=["active", "paused"]), name="agent_status_valid"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.voice_id and self.voice.tenant_id not in (None, self.tenant_id):
            raise ValidationError({"voice": "This voice belongs to another tenant."})
        # Django skips field validators for empty values, so `{}` as tools would pass them: check types here.
        wrong = {
            name: f"Must be a JSON {kind.__name__.replace('dict', 'object').replace('list', 'array')}."
            for name, kind in (("tools", list), ("settings", dict), ("transfer_targets", list))
            if not isinstance(getattr(self, name), kind) and not getattr(self, name)
        }
        if wrong:
            raise ValidationError(wrong)

    def effective_settings(self, defaults: dict) -> dict:
        """The platform defaults with this agent's overrides applied section by section."""
        merged = {section: dict(values) for section, values in defaults.items()}
        for section, overrides in (self.settings or {}).items():
            merged.setdefault(section, {}).update(overrides)
        return merged


class KnowledgeDocument(TenantOwnedModel):
    """A document the agent may draw answers from (FAQ, policies, price lists).

    `content` is the source of truth: an upload's or a web page's extracted text is stored in it, and the
    chunks (KnowledgeChunk) are cut from it and embedded after it is saved (docs/knowledge.md#documents).
    """

    class Format(models.TextChoices):
        TEXT = "text", "Text"
        MARKDOWN = "markdown", "Markdown"
        CSV = "csv", "CSV"
        HTML = "html", "Web page"
        PDF = "pdf", "PDF"
        DOCX = "docx", "Word document"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        PROCESSING = "processing", "Embedding"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge_documents")
    title = models.CharField(max_length=255)
    content = models.TextField(help_text="Plain text the agent retrieves from; FAQ entries as 'Q: … A: …' lines.")
    source_url = models.URLField(blank=True, help_text="Where the content came from, if anywhere.")
    source_format = models.CharField(
        max_length=20, choices=Format.choices, default=Format.TEXT, help_text="What the text was extracted from."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive documents are kept but not used on calls.")
    status = models.CharField(
        max_length=20,
        choices=Status.choices,
        default=Status.PENDING,
        help_text="Embedding: waiting, embedding, ready or failed (a document is searchable by its words meanwhile).",
    )
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_embedded = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why embedding failed or is being retried.")
    embed_attempts = models.PositiveSmallIntegerField(default=0)
    # pending: not before this (empty: at once); processing: the worker's lease ends; failed: next retry (empty: none)
    embed_next_at = models.DateTimeField(null=True, blank=True)
    embed_token = models.UUIDField(null=True, blank=True, editable=False)
    chunks_hash = models.CharField(max_length=64, blank=True, editable=False)
    model_id = models.CharField(max_length=64, blank=True, help_text="The embedding model of a ready document.")

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["status", "embed_next_at"], name="knowledge_embed_due_idx")]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "agent", "title"], name="knowledge_unique_agent_title"),
            models.CheckConstraint(condition=~Q(content=""), name="knowledge_content_not_empty"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "processing", "ready", "failed"]), name="knowledge_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(chunks_embedded__lte=models.F("chunks_total")), name="knowledge_progress_within_total"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        super().clean()
        if self.agent_id and self.tenant_id and self.agent.tenant_id != self.tenant_id:
            raise ValidationError({"agent": "This agent belongs to another tenant."})

    @property
    def progress(self) -> float:
        """Chunks embedded over chunks, 0 to 1 (1 for a ready document)."""
        if self.status == self.Status.READY:
            return 1.0
        return round(self.chunks_embedded / self.chunks_total, 3) if self.chunks_total else 0.0


class KnowledgeChunk(TenantOwnedModel):
    """A passage of a knowledge document, with its embedding (agents/knowledge/store.py writes these)."""

    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge_chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    section = models.CharField(max_length=255, blank=True, help_text="The heading the passage sits under.")
    page = models.PositiveIntegerField(null=True, blank=True, help_text="The page of a PDF.")
    question = models.TextField(blank=True, help_text="An FAQ pair's question alone.")
    answer = models.TextField(blank=True, help_text="An FAQ pair's answer alone.")
    # float16 rows of core.embeddings.DIM values; empty until embedded
    vector = models.BinaryField(null=True, blank=True)
    question_vector = models.BinaryField(null=True, blank=True)
    model_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["document", "position"]
        indexes = [models.Index(fields=["tenant", "agent"], name="knowledge_chunk_agent_idx")]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="knowledge_chunk_unique_position"),
            models.CheckConstraint(condition=~Q(text=""), name="knowledge_chunk_text_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id} #{self.position}"
