"""Staff admin for voices, agents, their knowledge documents and the documents' chunks (read only).

The JSON fields (tools, settings, transfer targets) carry the model's schema validators, which the
admin's ModelForm runs through full_clean: a bad tool definition is a form error, never a 500.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.db.models import Prefetch

from agents.knowledge import embedding
from agents.models import Agent, KnowledgeChunk, KnowledgeDocument, Voice
from core.admin_base import (
    PlatformModelAdmin,
    PlatformStackedInline,
    RecordAdminMixin,
    SoftDeleteFilter,
    TenantOwnedAdmin,
    admin_changelist_link,
    related_count,
)
from tenants.admin import register_tenant_records


class VoiceOwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        return [("platform", "Platform"), ("tenant", "A tenant's own")]

    def queryset(self, request, queryset):
        if self.value() == "platform":
            return queryset.filter(tenant__isnull=True)
        if self.value() == "tenant":
            return queryset.filter(tenant__isnull=False)
        return queryset


@admin.register(Voice)
class VoiceAdmin(TenantOwnedAdmin):
    list_display = ("name", "owner", "provider", "provider_voice_id", "language", "is_active", "agent_count")
    list_filter = (VoiceOwnerFilter, "provider", "is_active", "language")
    search_fields = ("name", "provider_voice_id", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("name",)
    readonly_fields = ("agent_count", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("tenant", "name", "description", "language", "is_active")}),
        ("Provider", {"fields": ("provider", "provider_voice_id")}),
        (
            "Cloning and expressiveness",
            {
                "fields": ("reference_audio", "exaggeration", "cfg_weight"),
                "description": "Chatterbox only: a reference recording to clone, and how expressive the voice is.",
            },
        ),
        ("Overview", {"fields": ("agent_count", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(agent_count=related_count(Agent.objects.dangerously_unscoped(), "voice"))
        )

    @admin.display(description="Owner", ordering="tenant__name")
    def owner(self, obj):
        return obj.tenant or "Platform"

    @admin.display(description="Agents", ordering="agent_count")
    def agent_count(self, obj):
        return obj.agent_count


class KnowledgeDocumentForm(forms.ModelForm):
    """A document belongs to its agent's tenant, so the tenant is taken from the agent, not asked for."""

    # A scheme-less URL gets https, Django 6's default; saying so now silences its deprecation warning.
    source_url = forms.URLField(
        required=False,
        assume_scheme="https",
        widget=AdminURLFieldWidget,
        help_text=KnowledgeDocument._meta.get_field("source_url").help_text,
    )

    class Meta:
        model = KnowledgeDocument
        fields = ("agent", "title", "content", "source_url", "is_active")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("agent") is not None:
            self.instance.tenant_id = cleaned["agent"].tenant_id
        return cleaned

    def _get_validation_exclusions(self):
        # `tenant` is no form field, so Django would skip the (tenant, agent, title) unique check and a
        # duplicate title would surface as an IntegrityError: keep it checked once the tenant is known.
        exclusions = super()._get_validation_exclusions()
        if self.instance.tenant_id is not None:
            exclusions.discard("tenant")
        return exclusions


class KnowledgeDocumentInline(PlatformStackedInline):
    model = KnowledgeDocument
    form = KnowledgeDocumentForm
    fields = ("title", "content", "source_url", "is_active")
    extra = 0
    show_change_link = True


@admin.register(Agent)
class AgentAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "status", "voice", "numbers", "document_count", "deleted_at", "updated_at")
    list_filter = ("status", SoftDeleteFilter)
    search_fields = ("name", "description", "tenant__name", "tenant__slug")
    list_select_related = ("tenant", "voice__tenant")  # Voice.__str__ names its tenant
    autocomplete_fields = ("tenant", "voice")
    ordering = ("tenant__name", "name")
    readonly_fields = ("numbers", "document_count", "calls", "created_at", "updated_at")
    fieldsets = (
        ("Basics", {"fields": ("tenant", "name", "description", "status", "deleted_at")}),
        (
            "Voice & speech",
            {
                "fields": ("voice", "system_prompt", "greeting_message", "voicemail_message"),
                "description": "The voice must be a platform voice or one of the agent's tenant.",
            },
        ),
        (
            "Tools & transfers (JSON)",
            {
                "fields": ("tools", "transfer_targets"),
                "description": "Checked against the tool and transfer-target schemas when saved.",
            },
        ),
        (
            "Pipeline settings (JSON)",
            {
                "fields": ("settings",),
                "description": "Only overrides of the platform defaults, by section (stt, llm, tts, vad, …).",
            },
        ),
        ("Overview", {"fields": ("numbers", "document_count", "calls", "created_at", "updated_at")}),
    )
    inlines = (KnowledgeDocumentInline,)

    def get_queryset(self, request):
        numbers = Prefetch("phone_numbers")  # the telephony app's numbers, through their foreign key
        documents = related_count(KnowledgeDocument.objects.dangerously_unscoped(), "agent")
        return super().get_queryset(request).prefetch_related(numbers).annotate(document_count=documents)

    def has_delete_permission(self, request, obj=None):
        return False  # agents are soft-deleted (deleted_at): their calls keep pointing at them

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for document in formset.new_objects + [obj for obj, _ in formset.changed_objects]:
            if isinstance(document, KnowledgeDocument):
                embedding.document_index(document)  # new text: cut into chunks and embedded after commit

    @admin.display(description="Phone numbers")
    def numbers(self, obj):
        return ", ".join(sorted(number.e164 for number in obj.phone_numbers.all())) or "—"

    @admin.display(description="Documents", ordering="document_count")
    def document_count(self, obj):
        return obj.document_count

    @admin.display(description="Calls")
    def calls(self, obj):
        return admin_changelist_link("calls.call", "View this agent's calls", agent__id__exact=obj.pk)


@admin.register(KnowledgeDocument)
class KnowledgeDocumentAdmin(TenantOwnedAdmin):
    form = KnowledgeDocumentForm
    list_display = ("title", "agent", "tenant", "source_format", "status", "is_active", "updated_at")
    list_filter = ("is_active", "status", "source_format")
    search_fields = ("title", "agent__name", "tenant__name", "tenant__slug")
    list_select_related = ("agent", "tenant")
    autocomplete_fields = ("agent",)
    create_only_fields = ("agent",)
    ordering = ("tenant__name", "agent__name", "title")
    readonly_fields = ("tenant", "source_format", "status", "progress", "error", "chunks", "created_at", "updated_at")
    fields = (
        "agent", "tenant", "title", "content", "source_url", "source_format", "is_active", "status", "progress",
        "error", "chunks", "created_at", "updated_at",
    )  # fmt: skip

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        embedding.document_index(obj)  # new text: cut into chunks and embedded after commit

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.chunks_embedded} of {obj.chunks_total} chunks embedded"

    @admin.display(description="Chunks")
    def chunks(self, obj):
        return admin_changelist_link(KnowledgeChunk, "View its chunks", document__id__exact=obj.pk)


@admin.register(KnowledgeChunk)
class KnowledgeChunkAdmin(RecordAdminMixin, PlatformModelAdmin):
    """Chunks are cut and embedded by the platform (agents.knowledge): staff read them, nobody edits them."""

    list_display = ("document", "position", "section", "page", "embedded", "tenant")
    list_filter = ("model_id",)
    search_fields = ("text", "document__title", "tenant__name", "tenant__slug")
    list_select_related = ("document", "tenant")
    ordering = ("tenant__name", "document__title", "position")
    fields = (
        "tenant", "agent", "document", "position", "section", "page", "question", "answer", "text", "model_id",
        "embedded", "created_at", "updated_at",
    )  # fmt: skip

    @admin.display(description="Embedded", boolean=True)
    def embedded(self, obj):
        return obj.vector is not None


register_tenant_records(Agent, "Agents", order=10, counted=lambda: Agent.objects.dangerously_unscoped().alive())
