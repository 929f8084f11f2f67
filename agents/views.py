"""Dashboard pages for agents (list, create, edit, the agent page, its knowledge base) and voices.

Reads go through agents.selectors with the active tenant; writes call agents.services exactly as
agents/apis.py does, and a service's refusal is shown on the form (a 400), never as a 500.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View
from django.views.generic import ListView, TemplateView

from agents import selectors, services
from agents.forms import AgentForm, KnowledgeDocumentForm, VoiceCloneForm, add_service_error, pretty_json
from agents.models import Agent
from agents.presentation import document_status, speaks_as
from core.errors import ApplicationError
from tenants.web import TenantPageMixin

LATEST_CALLS = 10


class AgentListView(TenantPageMixin, ListView):
    template_name = "agents/list.html"
    page_title = "Agents"
    nav_section = "agents"
    paginate_by = 25
    context_object_name = "agents"

    def get_queryset(self):
        return selectors.agent_list_with_numbers(tenant=self.tenant)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        keys = selectors.provider_keys(tenant=self.tenant)
        context["rows"] = [(agent, selectors.agent_engines(agent=agent, keys=keys)) for agent in context["agents"]]
        return context


class TenantAgentMixin(TenantPageMixin):
    """Pages about one of the tenant's live agents: another tenant's (or a deleted) agent is a 404."""

    nav_section = "agents"

    def get_agent(self) -> Agent:
        if not hasattr(self, "_agent"):
            agents = selectors.agent_list(tenant=self.tenant).select_related("voice")
            self._agent = get_object_or_404(agents, pk=self.kwargs["agent_id"])
        return self._agent


class AgentFormView(TenantPageMixin, TemplateView):
    """Create (no agent_id) or edit an agent. A viewer sees the form disabled; their POST is a 403."""

    template_name = "agents/form.html"
    nav_section = "agents"

    def agent(self) -> Agent | None:
        return None

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=self.build_form()))

    def post(self, request, *args, **kwargs):
        form = self.build_form(data=request.POST)
        if form.is_valid():
            try:
                agent = self.save(form.service_fields())
            except (ApplicationError, ValidationError) as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, self.success_message(agent))
                return redirect("agents:detail", agent_id=agent.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def build_form(self, data=None) -> AgentForm:
        return AgentForm(data, tenant=self.tenant, agent=self.agent(), read_only=not self.allows("write"))


class AgentCreateView(AgentFormView):
    page_title = "New agent"

    def save(self, fields: dict) -> Agent:
        return services.agent_create(tenant=self.tenant, actor=self.audit_actor(), **fields)

    def success_message(self, agent: Agent) -> str:
        return f"Agent “{agent.name}” created. Try it with a test call from your browser."


class AgentEditView(TenantAgentMixin, AgentFormView):
    def agent(self) -> Agent:
        return self.get_agent()

    def save(self, fields: dict) -> Agent:
        return services.agent_update(agent=self.get_agent(), actor=self.audit_actor(), **fields)

    def success_message(self, agent: Agent) -> str:
        return f"Agent “{agent.name}” saved. New calls use the changes."

    def get_context_data(self, **kwargs):
        kwargs.setdefault("document_form", KnowledgeDocumentForm(prefix="document"))
        context = super().get_context_data(**kwargs)
        agent = self.get_agent()
        context.update(
            agent=agent,
            page_title=f"Edit {agent.name}",
            **documents_with_status(self.tenant, agent),
        )
        return context


class AgentDetailView(TenantAgentMixin, TemplateView):
    template_name = "agents/detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        agent = self.get_agent()
        keys = selectors.provider_keys(tenant=self.tenant)
        context.update(
            agent=agent,
            page_title=agent.name,
            engines=selectors.agent_engines(agent=agent, keys=keys),
            pipeline=agent.effective_settings(settings.VOICE_PIPELINE_DEFAULTS),
            settings_json=pretty_json(agent.settings) if agent.settings else "",
            # The numbers routed to the agent and its latest calls: other apps' rows, read through the
            # reverse relations of their foreign keys to the agent (this app imports neither).
            numbers=agent.phone_numbers.filter(tenant=self.tenant).order_by("e164"),
            calls=agent.calls.filter(tenant=self.tenant)
            .select_related("agent")
            .order_by("-created_at", "-id")[:LATEST_CALLS],
            **documents_with_status(self.tenant, agent),
        )
        return context


def documents_with_status(tenant, agent) -> dict:
    """The context of the agent pages' knowledge base: (document, its status) pairs by title, and how soon the
    page should ask for the statuses again (0: nothing is being embedded)."""
    documents = [(d, document_status(d)) for d in selectors.knowledge_document_list(tenant=tenant, agent=agent)]
    polls = [status["poll_seconds"] for _, status in documents if status["poll_seconds"]]
    return {"documents": documents, "knowledge_poll_seconds": min(polls, default=0)}


class AgentDeleteView(TenantAgentMixin, View):
    """POST: soft-delete the agent (its calls stay; its numbers stop ringing it)."""

    def post(self, request, agent_id):
        agent = services.agent_delete(agent=self.get_agent(), actor=self.audit_actor())
        messages.success(request, f"Agent “{agent.name}” deleted. Its call history is kept.")
        return redirect("agents:list")


class AgentDuplicateView(TenantAgentMixin, View):
    """POST: a copy of the agent (configuration, tools, transfer targets, knowledge; not its numbers)."""

    def post(self, request, agent_id):
        original = self.get_agent()
        try:
            duplicate = services.agent_duplicate(agent=original, actor=self.audit_actor())
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("agents:detail", agent_id=original.pk)
        messages.success(
            request,
            f"“{duplicate.name}” created from “{original.name}”. It has no phone number yet: assign one on Numbers.",
        )
        return redirect("agents:detail", agent_id=duplicate.pk)


class DocumentAddView(AgentEditView):
    """POST a knowledge document (typed, uploaded or a web page); an invalid one re-renders the edit page (400)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        agent = self.get_agent()
        form = KnowledgeDocumentForm(request.POST, request.FILES, prefix="document")
        if form.is_valid():
            try:
                document = services.knowledge_document_create(
                    agent=agent, actor=self.audit_actor(), **self.document_fields(form.cleaned_data)
                )
            except (ApplicationError, ValidationError) as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request,
                    f"“{document.title}” added to the knowledge base. It is being embedded for search by meaning.",
                )
                return redirect(reverse("agents:edit", args=[agent.pk]) + "#knowledge")
        context = self.get_context_data(form=self.build_form(), document_form=form)
        return self.render_to_response(context, status=400)

    @staticmethod
    def document_fields(cleaned: dict) -> dict:
        """The service's fields: an upload's or a web page's text becomes the content (the API's rules)."""
        fields = {"title": cleaned["title"], "source_url": cleaned.get("source_url") or ""}
        if cleaned.get("file"):
            upload = cleaned["file"]
            extracted = services.knowledge_upload_extract(
                data=upload.read(services.knowledge_upload_read_limit()),
                content_type=upload.content_type,
                filename=upload.name,
            )
            return {**fields, "content": extracted.text, "source_format": extracted.format}
        if cleaned.get("url"):
            page = services.knowledge_url_fetch(url=cleaned["url"])
            return {
                **fields,
                "content": page.text,
                "source_format": page.format,
                "source_url": fields["source_url"] or cleaned["url"],
            }
        return {**fields, "content": cleaned["content"]}


class DocumentDeleteView(TenantAgentMixin, View):
    def post(self, request, agent_id, document_id):
        documents = selectors.knowledge_document_list(tenant=self.tenant, agent=self.get_agent())
        document = get_object_or_404(documents, pk=document_id)
        services.knowledge_document_delete(document=document, actor=self.audit_actor())
        messages.success(request, f"“{document.title}” removed from the knowledge base.")
        return redirect(reverse("agents:edit", args=[agent_id]) + "#knowledge")


class DocumentRetryView(TenantAgentMixin, View):
    """POST: embed a failed (or retrying) document again now; back to the page it was asked from."""

    def post(self, request, agent_id, document_id):
        documents = selectors.knowledge_document_list(tenant=self.tenant, agent=self.get_agent())
        document = get_object_or_404(documents, pk=document_id)
        try:
            services.knowledge_document_retry(document=document, actor=self.audit_actor())
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"“{document.title}” is being embedded again.")
        page = "agents:edit" if request.POST.get("back") == "edit" else "agents:detail"
        return redirect(reverse(page, args=[agent_id]) + "#knowledge")


class DocumentStatusView(TenantAgentMixin, View):
    """GET: the embedding status of the agent's documents as JSON, which the agent pages poll."""

    def get(self, request, agent_id):
        documents = selectors.knowledge_document_list(tenant=self.tenant, agent=self.get_agent()).defer("content")
        statuses = [document_status(document) for document in documents]
        polls = [status["poll_seconds"] for status in statuses if status["poll_seconds"]]
        return JsonResponse({"documents": statuses, "poll_seconds": min(polls, default=0)})


CLONING_UNAVAILABLE = "Voice cloning is not available on this deployment: it needs the TTS node (CHATTERBOX_URL)."


class VoiceListView(TenantPageMixin, ListView):
    """The voices the tenant may use, a preview of each, and cloning a new one from a recording."""

    template_name = "agents/voices.html"
    page_title = "Voices"
    nav_section = "voices"
    paginate_by = 25
    context_object_name = "voices"

    def get_queryset(self):
        return selectors.voice_list(tenant=self.tenant)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("form", VoiceCloneForm(available=self.cloning_available()))
        context = super().get_context_data(**kwargs)
        keys = selectors.provider_keys(tenant=self.tenant)
        context["rows"] = []
        for voice in context["voices"]:
            engine = selectors.voice_engine(voice=voice, keys=keys)
            context["rows"].append((voice, engine, *speaks_as(voice, engine)))
        context["cloning_available"] = self.cloning_available()
        return context

    def cloning_available(self) -> bool:
        """Cloning needs the TTS node: the page says so before anyone uploads (agents.chatterbox_voices)."""
        return bool(settings.CHATTERBOX_URL)

    def post(self, request):
        if not self.cloning_available():  # refused up front: the upload is not even read
            form = VoiceCloneForm(available=False)
            form.cleaned_data = {}  # an unbound form takes an error only with this
            form.add_error(None, CLONING_UNAVAILABLE)
            self.object_list = self.get_queryset()
            return self.render_to_response(self.get_context_data(form=form), status=400)
        form = VoiceCloneForm(request.POST, request.FILES)
        status = 400
        if form.is_valid():
            fields = dict(form.cleaned_data)
            upload = fields.pop("reference_audio")
            try:
                voice = services.voice_clone_create(
                    tenant=self.tenant,
                    actor=self.audit_actor(),
                    data=upload.read(),
                    filename=upload.name,
                    content_type=upload.content_type,
                    **fields,
                )
            except (ApplicationError, ValidationError) as exc:
                add_service_error(form, exc)
                # The TTS node failing (502/503) is no mistake of the user's: keep its status.
                status = max(400, getattr(exc, "status_code", 400))
            else:
                messages.success(request, f"Voice “{voice.name}” created. Press play to hear it.")
                return redirect("agents:voices")
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=status)
