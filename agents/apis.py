"""/v1/agents, their knowledge documents (/v1/agents/{id}/documents) and /v1/voices."""

from datetime import datetime

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from agents import selectors, services
from agents.knowledge import formats
from agents.models import Agent, KnowledgeDocument, Voice
from agents.schemas import validate_agent_settings, validate_tools, validate_transfer_targets
from core.api.docs import ErrorBody, error_responses
from core.api.parsers import StrictJSONParser
from core.api.serializers import Input, Query, resolve_in
from tenants.api.idempotency import idempotent
from tenants.api.views import TenantScopedAPIView


class AgentOutput(serializers.ModelSerializer):
    voice_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = Agent
        fields = [
            "id", "name", "description", "status", "voice_id", "system_prompt", "greeting_message",
            "voicemail_message", "tools", "settings", "transfer_targets", "created_at", "updated_at",
        ]  # fmt: skip


class AgentInput(Input):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False, default=Agent.Status.ACTIVE)
    voice_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    system_prompt = serializers.CharField()
    greeting_message = serializers.CharField(required=False, allow_blank=True, default="")
    voicemail_message = serializers.CharField(required=False, allow_blank=True, default="")
    tools = serializers.JSONField(required=False, default=list, validators=[validate_tools])
    settings = serializers.JSONField(required=False, default=dict, validators=[validate_agent_settings])
    transfer_targets = serializers.JSONField(required=False, default=list, validators=[validate_transfer_targets])


class AgentFilters(Query):
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)
    search = serializers.CharField(
        required=False, allow_blank=True, help_text="Case-insensitive match on the agent's name."
    )


def _agent_fields(view, data: dict) -> dict:
    fields = dict(data)
    if "voice_id" in fields:
        fields["voice"] = resolve_in(
            selectors.voice_list(tenant=view.tenant), fields.pop("voice_id"), field="voice_id", label="voice"
        )
    return fields


class AgentListCreateApi(TenantScopedAPIView):
    serializer_class = AgentOutput

    def tenant_queryset(self):
        return selectors.agent_list(tenant=self.tenant)

    @extend_schema(
        operation_id="agents_list",
        parameters=[AgentFilters],
        responses={200: AgentOutput(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        filters = AgentFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        agents = self.get_queryset()
        if "status" in filters.validated_data:
            agents = agents.filter(status=filters.validated_data["status"])
        if filters.validated_data.get("search"):
            agents = agents.filter(name__icontains=filters.validated_data["search"])
        page = self.paginate_queryset(agents)
        return self.get_paginated_response(AgentOutput(page, many=True).data)

    @extend_schema(
        operation_id="agents_create",
        request=AgentInput,
        responses={201: AgentOutput, **error_responses(400, 401, 403, 409, 415, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = AgentInput(data=request.data)
        data.is_valid(raise_exception=True)
        agent = services.agent_create(
            tenant=self.tenant, actor=self.audit_actor(), **_agent_fields(self, data.validated_data)
        )
        return Response(AgentOutput(agent).data, status=status.HTTP_201_CREATED)


class AgentDetailApi(TenantScopedAPIView):
    serializer_class = AgentOutput

    def tenant_queryset(self):
        return selectors.agent_list(tenant=self.tenant)

    @extend_schema(operation_id="agents_retrieve", responses={200: AgentOutput, **error_responses(401, 403, 404, 429)})
    def get(self, request, agent_id):
        return Response(AgentOutput(self.get_scoped(agent_id)).data)

    @extend_schema(
        operation_id="agents_replace",
        request=AgentInput,
        responses={200: AgentOutput, **error_responses(400, 401, 403, 404, 415, 429)},
    )
    def put(self, request, agent_id):
        return self._update(request, agent_id, partial=False)

    @extend_schema(
        operation_id="agents_update",
        request=AgentInput(partial=True),
        responses={200: AgentOutput, **error_responses(400, 401, 403, 404, 415, 429)},
    )
    def patch(self, request, agent_id):
        return self._update(request, agent_id, partial=True)

    @extend_schema(operation_id="agents_delete", responses={204: None, **error_responses(401, 403, 404, 429)})
    def delete(self, request, agent_id):
        services.agent_delete(agent=self.get_scoped(agent_id), actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, agent_id, *, partial: bool):
        agent = self.get_scoped(agent_id)
        data = AgentInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        agent = services.agent_update(agent=agent, actor=self.audit_actor(), **_agent_fields(self, data.validated_data))
        return Response(AgentOutput(agent).data)


class VoiceOutput(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField(help_text='"platform" for shared voices, "tenant" for your own.')

    class Meta:
        model = Voice
        fields = [
            "id",
            "name",
            "description",
            "provider",
            "provider_voice_id",
            "language",
            "exaggeration",
            "cfg_weight",
            "scope",
            "created_at",
        ]

    def get_scope(self, voice: Voice) -> str:
        return "platform" if voice.tenant_id is None else "tenant"


class VoiceInput(Input):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    provider = serializers.ChoiceField(choices=Voice.Provider.choices, default=Voice.Provider.CHATTERBOX)
    provider_voice_id = serializers.CharField(max_length=100)
    language = serializers.CharField(max_length=20, default="en-US")
    exaggeration = serializers.FloatField(min_value=0.25, max_value=2.0, default=0.5)
    cfg_weight = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.5)


class VoiceCloneInput(Input):
    """multipart/form-data: a new Chatterbox voice cloned from `reference_audio` by the TTS node."""

    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    language = serializers.CharField(max_length=20, default="en-US")
    exaggeration = serializers.FloatField(min_value=0.25, max_value=2.0, default=0.5)
    cfg_weight = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.5)
    reference_audio = serializers.FileField(
        help_text="5-60 s of clean speech, WAV, FLAC or OGG, at least 16 kHz; the node assigns provider_voice_id."
    )


NODE_ERRORS = {
    502: OpenApiResponse(response=ErrorBody, description="The TTS node failed while storing the voice."),
    503: OpenApiResponse(response=ErrorBody, description="The TTS node is not configured or cannot be reached."),
}


class VoiceListCreateApi(TenantScopedAPIView):
    serializer_class = VoiceOutput
    parser_classes = [StrictJSONParser, MultiPartParser]

    def tenant_queryset(self):
        return selectors.voice_list(tenant=self.tenant)

    @extend_schema(
        operation_id="voices_list", responses={200: VoiceOutput(many=True), **error_responses(401, 403, 429)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(VoiceOutput(page, many=True).data)

    @extend_schema(
        operation_id="voices_create",
        description="JSON: register a voice the provider already has. multipart/form-data with "
        "`reference_audio`: clone a new Chatterbox voice on the TTS node.",
        request={"application/json": VoiceInput, "multipart/form-data": VoiceCloneInput},
        responses={201: VoiceOutput, **error_responses(400, 401, 403, 415, 422, 429), **NODE_ERRORS},
    )
    @idempotent
    def post(self, request):
        actor = self.audit_actor()
        if request.content_type.startswith("multipart/form-data"):
            data = VoiceCloneInput(data=request.data)
            data.is_valid(raise_exception=True)
            fields = dict(data.validated_data)
            upload = fields.pop("reference_audio")
            voice = services.voice_clone_create(
                tenant=self.tenant,
                actor=actor,
                data=upload.read(),
                filename=upload.name,
                content_type=upload.content_type,
                **fields,
            )
        else:
            data = VoiceInput(data=request.data)
            data.is_valid(raise_exception=True)
            voice = services.voice_create(tenant=self.tenant, actor=actor, **data.validated_data)
        return Response(VoiceOutput(voice).data, status=status.HTTP_201_CREATED)


# --- knowledge documents --------------------------------------------------------------------------


class DocumentOutput(serializers.ModelSerializer):
    agent_id = serializers.UUIDField()
    progress = serializers.FloatField(help_text="Chunks embedded over chunks, 0 to 1.")
    next_attempt_at = serializers.SerializerMethodField(
        help_text="When a waiting or failed document is next tried (null: at once, or not again on its own)."
    )

    class Meta:
        model = KnowledgeDocument
        fields = [
            "id", "agent_id", "title", "content", "source_url", "source_format", "is_active", "status", "progress",
            "chunks_total", "chunks_embedded", "error", "next_attempt_at", "created_at", "updated_at",
        ]  # fmt: skip

    def get_next_attempt_at(self, document: KnowledgeDocument) -> datetime | None:
        waiting = document.status in (KnowledgeDocument.Status.PENDING, KnowledgeDocument.Status.FAILED)
        return document.embed_next_at if waiting else None


class DocumentInput(Input):
    title = serializers.CharField(max_length=255, help_text="Unique among the agent's documents.")
    content = serializers.CharField(
        required=False,
        max_length=services.KNOWLEDGE_MAX_CHARACTERS,
        help_text="Plain text or Markdown the agent answers from; FAQ entries as lines like 'Q: … A: …'. "
        "Give either content or url.",
    )
    url = serializers.URLField(
        required=False,
        max_length=200,
        help_text="A web page (http or https) whose text becomes the content: fetched once, now, on a public "
        "address only. Becomes source_url unless one is given.",
    )
    source_url = serializers.URLField(
        required=False, allow_blank=True, default="", max_length=200, help_text="Where the content came from."
    )
    is_active = serializers.BooleanField(
        required=False, default=True, help_text="Inactive documents are kept but not used on calls."
    )

    def validate(self, attrs):
        if self.partial:
            if "content" in attrs and "url" in attrs:
                raise serializers.ValidationError({"url": ["Give either content or url, not both."]})
            return attrs
        if ("content" in attrs) == ("url" in attrs):
            raise serializers.ValidationError({"content": ["Give either content or url."]})
        return attrs


class DocumentUploadInput(Input):
    """multipart/form-data: the document's text is read from the uploaded file."""

    title = serializers.CharField(max_length=255, help_text="Unique among the agent's documents.")
    file = serializers.FileField(
        help_text=f"{formats.FORMATS_NAMED.capitalize()}: text files UTF-8 and at most "
        f"{services.KNOWLEDGE_MAX_UPLOAD_BYTES:,} bytes, PDF and DOCX at most {formats.MAX_FILE_BYTES:,} bytes; "
        f"at most {services.KNOWLEDGE_MAX_CHARACTERS:,} characters of text."
    )
    source_url = serializers.URLField(required=False, allow_blank=True, default="", max_length=200)
    is_active = serializers.BooleanField(required=False, default=True)


def _document_fields(data: dict) -> dict:
    """The service's fields from the API's: a `url` is fetched into content (outside any transaction)."""
    fields = dict(data)
    url = fields.pop("url", None)
    if url:
        page = services.knowledge_url_fetch(url=url)
        fields.update(content=page.text, source_format=page.format)
        fields["source_url"] = fields.get("source_url") or url
    elif "content" in fields:
        fields["source_format"] = KnowledgeDocument.Format.TEXT
    return fields


class AgentDocumentsMixin:
    """The documents of the URL's agent; another tenant's (or a deleted) agent is a 404 like a missing one."""

    def agent(self) -> Agent:
        if not hasattr(self, "_agent"):
            self._agent = selectors.agent_get(tenant=self.tenant, agent_id=self.kwargs["agent_id"])
        if self._agent is None:
            raise Http404
        return self._agent

    def tenant_queryset(self):
        return selectors.knowledge_document_list(tenant=self.tenant, agent=self.agent())


class DocumentListCreateApi(AgentDocumentsMixin, TenantScopedAPIView):
    serializer_class = DocumentOutput
    parser_classes = [StrictJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="agents_documents_list",
        responses={200: DocumentOutput(many=True), **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request, agent_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DocumentOutput(page, many=True).data)

    @extend_schema(
        operation_id="agents_documents_create",
        description="Add a document to the agent's knowledge base, used from its next call on (by its words at "
        "once, by meaning once `status` is `ready`). JSON with `content` or a web page's `url`, or "
        "multipart/form-data with the document as `file` (text, Markdown, CSV, HTML, PDF or DOCX).",
        request={"application/json": DocumentInput, "multipart/form-data": DocumentUploadInput},
        responses={201: DocumentOutput, **error_responses(400, 401, 403, 404, 409, 415, 422, 429)},
    )
    @idempotent
    def post(self, request, agent_id):
        agent = self.agent()
        if request.content_type.startswith("multipart/form-data"):
            data = DocumentUploadInput(data=request.data)
            data.is_valid(raise_exception=True)
            fields = dict(data.validated_data)
            upload = fields.pop("file")
            extracted = services.knowledge_upload_extract(
                data=upload.read(services.knowledge_upload_read_limit()),
                content_type=upload.content_type,
                filename=upload.name,
            )
            fields.update(content=extracted.text, source_format=extracted.format)
        else:
            data = DocumentInput(data=request.data)
            data.is_valid(raise_exception=True)
            fields = _document_fields(data.validated_data)
        document = services.knowledge_document_create(agent=agent, actor=self.audit_actor(), **fields)
        return Response(DocumentOutput(document).data, status=status.HTTP_201_CREATED)


class DocumentDetailApi(AgentDocumentsMixin, TenantScopedAPIView):
    serializer_class = DocumentOutput

    @extend_schema(
        operation_id="agents_documents_retrieve", responses={200: DocumentOutput, **error_responses(401, 403, 404, 429)}
    )
    def get(self, request, agent_id, document_id):
        return Response(DocumentOutput(self.get_scoped(document_id)).data)

    @extend_schema(
        operation_id="agents_documents_update",
        request=DocumentInput(partial=True),
        responses={200: DocumentOutput, **error_responses(400, 401, 403, 404, 415, 429)},
    )
    def patch(self, request, agent_id, document_id):
        document = self.get_scoped(document_id)
        data = DocumentInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        document = services.knowledge_document_update(
            document=document, actor=self.audit_actor(), **_document_fields(data.validated_data)
        )
        return Response(DocumentOutput(document).data)

    @extend_schema(operation_id="agents_documents_delete", responses={204: None, **error_responses(401, 403, 404, 429)})
    def delete(self, request, agent_id, document_id):
        services.knowledge_document_delete(document=self.get_scoped(document_id), actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class DocumentRetryApi(AgentDocumentsMixin, TenantScopedAPIView):
    serializer_class = DocumentOutput

    @extend_schema(
        operation_id="agents_documents_retry",
        request=None,
        description="Embed a failed document again now (or one waiting for its next try).",
        responses={200: DocumentOutput, **error_responses(401, 403, 404, 409, 429)},
    )
    def post(self, request, agent_id, document_id):
        document = services.knowledge_document_retry(document=self.get_scoped(document_id), actor=self.audit_actor())
        return Response(DocumentOutput(document).data)
