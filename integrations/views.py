"""The Developers pages: API keys, webhook endpoints and their deliveries, provider credentials, backends.

Every write goes through the service the REST API calls, with the same role it requires: API keys
and credentials are admin-only even to look at (as on /v1/api-keys and /v1/credentials); webhooks
and backend services may be read by anyone in the tenant and changed by admins. Secrets (a new API
key, a webhook signing secret) are shown once: the POST that made one redirects to a page that shows
it on its first view only (integrations.secret_once holds it, sealed, for that one view), so
reloading shows nothing again and never makes a second key. Never in a flash message.
"""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from core.errors import ApplicationError
from integrations import secret_once, selectors, services
from integrations.forms import (
    ApiKeyForm,
    BackendServiceForm,
    CredentialCreateForm,
    CredentialSecretForm,
    WebhookForm,
    WebhookReplayForm,
    WebhookRotateForm,
)
from integrations.models import BackendService, OutboundRequest, ProviderCredential, WebhookDelivery, WebhookEndpoint
from integrations.verification import PROVIDER_NAMES, verdict
from integrations.webhooks import selectors as webhook_selectors
from integrations.webhooks import services as webhook_services
from integrations.webhooks.catalog import EVENT_TYPES
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.web import TenantPageMixin

ADMIN_ONLY = {"GET": "admin", "HEAD": "admin", "POST": "admin"}
ADMIN_WRITES = {"POST": "admin"}


class DeveloperPage(TenantPageMixin):
    nav_section = "developers"


class FormPage(DeveloperPage, FormView):
    """A form page: input the form or the service refuses is shown again, inline, with a 400."""

    required_scopes = ADMIN_ONLY

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def refused(self, form, exc: ApplicationError):
        form.add_service_error(exc)
        return self.form_invalid(form)


class ActionView(DeveloperPage, View):
    """A button: POST only, admin role, then back to a page with a message."""

    required_scopes = ADMIN_WRITES
    http_method_names = ["post"]


def secret_page(request, template: str, context: dict):
    """A page that carries a secret: rendered once, never cached by the browser or a proxy."""
    response = render(request, template, {"nav_section": "developers", **context})
    add_never_cache_headers(response)
    return response


# --- overview -------------------------------------------------------------------------------------


class DevelopersView(DeveloperPage, TemplateView):
    template_name = "integrations/developers.html"
    page_title = "Developers"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoints = webhook_selectors.webhook_endpoint_list(tenant=self.tenant)
        context.update(
            webhook_count=endpoints.count(),
            webhooks_disabled=endpoints.filter(enabled=False).count(),
            webhooks_failing=endpoints.filter(enabled=True, failing_since__isnull=False).count(),
            backend_count=selectors.backend_service_list(tenant=self.tenant).count(),
        )
        if self.allows("admin"):
            credentials = selectors.credential_list(tenant=self.tenant)
            context.update(
                api_key_count=tenant_selectors.api_key_list(tenant=self.tenant).usable().count(),
                credential_count=credentials.count(),
                credentials_failed=credentials.filter(verification=ProviderCredential.Verification.FAILED).count(),
            )
        return context


# --- API keys -------------------------------------------------------------------------------------


class ApiKeyListView(DeveloperPage, ListView):
    template_name = "integrations/api_keys.html"
    context_object_name = "api_keys"
    paginate_by = 25
    page_title = "API keys"
    required_scopes = ADMIN_ONLY

    def get_queryset(self):
        return tenant_selectors.api_key_list(tenant=self.tenant).select_related("created_by")


class ApiKeyCreateView(FormPage):
    template_name = "integrations/api_key_form.html"
    form_class = ApiKeyForm
    page_title = "New API key"

    def form_valid(self, form):
        actor = self.audit_actor()
        try:
            issued = tenant_services.api_key_create(
                tenant=self.tenant, created_by=actor["actor_user"], actor=actor, **form.cleaned_data
            )
        except ApplicationError as exc:
            return self.refused(form, exc)
        secret_once.hold(self.request, kind="api_key", object_id=issued.api_key.pk, secret=issued.secret)
        return HttpResponseRedirect(reverse("integrations:api-key-created", args=[issued.api_key.pk]))


class ApiKeyCreatedView(DeveloperPage, View):
    """GET after creating a key: its secret, this once; a reload says it was shown already."""

    required_scopes = ADMIN_ONLY

    def get(self, request, key_id):
        api_key = get_object_or_404(tenant_selectors.api_key_list(tenant=self.tenant), pk=key_id)
        held = secret_once.take(request, kind="api_key", object_id=api_key.pk)
        if held is None:
            messages.info(request, f"The secret of “{api_key.name}” was shown once and cannot be shown again.")
            return HttpResponseRedirect(reverse("integrations:api-keys"))
        context = {"page_title": "API key created", "api_key": api_key, "secret": held[0]}
        return secret_page(request, "integrations/api_key_created.html", context)


class ApiKeyRevokeView(ActionView):
    def post(self, request, key_id):
        api_key = get_object_or_404(tenant_selectors.api_key_list(tenant=self.tenant), pk=key_id)
        tenant_services.api_key_revoke(api_key=api_key, actor=self.audit_actor())
        messages.success(request, f"The key “{api_key.name}” ({api_key.prefix}…) is revoked: it no longer works.")
        return HttpResponseRedirect(reverse("integrations:api-keys"))


# --- webhooks -------------------------------------------------------------------------------------


class WebhookListView(DeveloperPage, ListView):
    template_name = "integrations/webhooks.html"
    context_object_name = "endpoints"
    paginate_by = 25
    page_title = "Webhooks"

    def get_queryset(self):
        return webhook_selectors.webhook_endpoint_list(tenant=self.tenant)


def _webhook(view, webhook_id) -> WebhookEndpoint:
    return get_object_or_404(webhook_selectors.webhook_endpoint_list(tenant=view.tenant), pk=webhook_id)


class WebhookCreateView(FormPage):
    template_name = "integrations/webhook_form.html"
    form_class = WebhookForm
    page_title = "New webhook endpoint"

    def get_context_data(self, **kwargs):
        return super().get_context_data(event_catalog=EVENT_TYPES.values(), **kwargs)

    def form_valid(self, form):
        try:
            issued = webhook_services.webhook_endpoint_create(
                tenant=self.tenant, actor=self.audit_actor(), **form.cleaned_data
            )
        except ApplicationError as exc:
            return self.refused(form, exc)
        return _hold_signing_secret(self.request, issued, rotated=False)


def _hold_signing_secret(request, issued, *, rotated: bool):
    secret_once.hold(
        request, kind="webhook", object_id=issued.endpoint.pk, secret=issued.secret, extra={"rotated": rotated}
    )
    return HttpResponseRedirect(reverse("integrations:webhook-secret", args=[issued.endpoint.pk]))


class WebhookSecretView(DeveloperPage, View):
    """GET after creating an endpoint or rotating its secret: the signing secret, this once."""

    required_scopes = {"GET": "admin", "HEAD": "admin"}

    def get(self, request, webhook_id):
        endpoint = _webhook(self, webhook_id)
        held = secret_once.take(request, kind="webhook", object_id=endpoint.pk)
        if held is None:
            messages.info(
                request, "The signing secret was shown once and cannot be shown again; rotate it for a new one."
            )
            return HttpResponseRedirect(reverse("integrations:webhook-detail", args=[endpoint.pk]))
        secret, extra = held
        rotated = bool(extra.get("rotated"))
        context = {
            "page_title": "New signing secret" if rotated else "Webhook endpoint created",
            "endpoint": endpoint,
            "secret": secret,
            "rotated": rotated,
        }
        return secret_page(request, "integrations/webhook_secret.html", context)


class WebhookEditView(FormPage):
    template_name = "integrations/webhook_form.html"
    form_class = WebhookForm
    page_title = "Edit webhook endpoint"

    @cached_property
    def endpoint(self) -> WebhookEndpoint:
        return _webhook(self, self.kwargs["webhook_id"])

    def get_initial(self):
        return {k: getattr(self.endpoint, k) for k in ("url", "description", "event_types", "enabled")}

    def get_context_data(self, **kwargs):
        return super().get_context_data(endpoint=self.endpoint, event_catalog=EVENT_TYPES.values(), **kwargs)

    def form_valid(self, form):
        endpoint = self.endpoint
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            try:
                webhook_services.webhook_endpoint_update(endpoint=endpoint, actor=self.audit_actor(), **changes)
            except ApplicationError as exc:
                return self.refused(form, exc)
            messages.success(self.request, "Webhook endpoint saved.")
        else:
            messages.info(self.request, "Nothing changed.")
        return HttpResponseRedirect(reverse("integrations:webhook-detail", args=[endpoint.pk]))


class WebhookDeleteView(ActionView):
    def post(self, request, webhook_id):
        endpoint = _webhook(self, webhook_id)
        webhook_services.webhook_endpoint_delete(endpoint=endpoint, actor=self.audit_actor())
        messages.success(request, f"Webhook endpoint {endpoint.url} deleted, with its delivery log.")
        return HttpResponseRedirect(reverse("integrations:webhooks"))


class WebhookTestView(ActionView):
    """POST: one signed webhook.test event to this endpoint, through the outbox; it shows in the delivery log."""

    def post(self, request, webhook_id):
        endpoint = _webhook(self, webhook_id)
        try:
            delivery = webhook_services.webhook_endpoint_send_test(endpoint=endpoint, actor=self.audit_actor())
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"Test event {delivery.message_id} is on its way: it shows in the delivery log below."
            )
        return HttpResponseRedirect(reverse("integrations:webhook-detail", args=[endpoint.pk]))


class WebhookDetailView(DeveloperPage, ListView):
    """One endpoint: its settings, its delivery log (filter by status), replay and secret rotation."""

    template_name = "integrations/webhook_detail.html"
    context_object_name = "deliveries"
    paginate_by = 25

    @cached_property
    def endpoint(self) -> WebhookEndpoint:
        return _webhook(self, self.kwargs["webhook_id"])

    def status_filter(self) -> str:
        status = self.request.GET.get("status", "")
        return status if status in WebhookDelivery.Status.values else ""

    def get_queryset(self):
        return webhook_selectors.webhook_delivery_list(
            tenant=self.tenant, endpoint=self.endpoint, status=self.status_filter() or None
        )

    def get_context_data(self, **kwargs):
        kwargs.setdefault("replay_form", WebhookReplayForm())
        kwargs.setdefault("rotate_form", WebhookRotateForm())
        context = super().get_context_data(**kwargs)
        context.update(
            endpoint=self.endpoint,
            page_title=f"Webhook endpoint {self.endpoint.url}",
            status_filter=self.status_filter(),
            statuses=WebhookDelivery.Status.choices,
            now=timezone.now(),
        )
        return context

    def render_refused(self, **context):
        """The page again with a refusal shown where it happened (a 400, like every refused form)."""
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(refused=True, **context), status=400)


class WebhookRotateView(WebhookDetailView):
    required_scopes = ADMIN_WRITES
    http_method_names = ["post"]

    def post(self, request, webhook_id):
        form = WebhookRotateForm(request.POST)
        if not form.is_valid():
            return self.render_refused(rotate_form=form)
        try:
            issued = webhook_services.webhook_endpoint_rotate_secret(
                endpoint=self.endpoint, overlap_hours=form.cleaned_data["overlap_hours"], actor=self.audit_actor()
            )
        except ApplicationError as exc:
            form.add_service_error(exc)
            return self.render_refused(rotate_form=form)
        return _hold_signing_secret(request, issued, rotated=True)


class WebhookReplayView(WebhookDetailView):
    """Replay every failed delivery since a time (same webhook-id and body, a new retry cycle)."""

    required_scopes = ADMIN_WRITES
    http_method_names = ["post"]

    def post(self, request, webhook_id):
        form = WebhookReplayForm(request.POST)
        if not form.is_valid():
            return self.render_refused(replay_form=form)
        try:
            count = webhook_services.webhook_deliveries_replay_failed(
                endpoint=self.endpoint, since=form.cleaned_data["since"], actor=self.audit_actor()
            )
        except ApplicationError as exc:
            form.add_service_error(exc)
            return self.render_refused(replay_form=form)
        if count:
            messages.success(request, f"{count} failed deliver{'y' if count == 1 else 'ies'} will be sent again now.")
        else:
            messages.info(request, "No failed deliveries since then: nothing to replay.")
        return HttpResponseRedirect(reverse("integrations:webhook-detail", args=[webhook_id]))


class DeliveryReplayView(WebhookDetailView):
    """Replay one delivery; a refusal (still pending, endpoint disabled) is shown on its row."""

    required_scopes = ADMIN_WRITES
    http_method_names = ["post"]

    def post(self, request, delivery_id):
        delivery = get_object_or_404(webhook_selectors.webhook_delivery_list(tenant=self.tenant), pk=delivery_id)
        self.kwargs["webhook_id"] = delivery.endpoint_id
        try:
            webhook_services.webhook_delivery_replay(delivery=delivery, actor=self.audit_actor())
        except ApplicationError as exc:
            return self.render_refused(refused_delivery_id=delivery.pk, refused_message=exc.message)
        messages.success(request, f"The {delivery.event_type} delivery {delivery.message_id} will be sent again now.")
        return HttpResponseRedirect(reverse("integrations:webhook-detail", args=[delivery.endpoint_id]))


# --- provider credentials -------------------------------------------------------------------------


class CredentialListView(DeveloperPage, ListView):
    template_name = "integrations/credentials.html"
    context_object_name = "credentials"
    paginate_by = 25
    page_title = "Provider credentials"
    required_scopes = ADMIN_ONLY

    def get_queryset(self):
        return selectors.credential_list(tenant=self.tenant)


class CredentialCreateView(FormPage):
    """Pick a provider first (?provider=…), then its fields: verified with the provider before saving."""

    template_name = "integrations/credential_form.html"
    form_class = CredentialCreateForm
    page_title = "Add a credential"

    def provider(self) -> str:
        provider = self.request.GET.get("provider", "")
        return provider if provider in ProviderCredential.Provider.values else ""

    def get(self, request, *args, **kwargs):
        if not self.provider():  # the first step: no form yet, only the providers to choose from
            return self.render_to_response(
                self.get_context_data(form=None, providers=ProviderCredential.Provider.choices)
            )
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if not self.provider():
            return HttpResponseRedirect(reverse("integrations:credential-create"))
        return super().post(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "provider": self.provider()}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.provider():
            context["provider_label"] = ProviderCredential.Provider(self.provider()).label
        return context

    def form_valid(self, form):
        provider = self.provider()
        try:
            credential = services.credential_create(
                tenant=self.tenant,
                name=form.cleaned_data["name"],
                provider=provider,
                secret=form.secret(),
                actor=self.audit_actor(),
            )
        except ApplicationError as exc:
            return self.refused(form, exc)
        messages.success(self.request, _saved_message(credential))
        return HttpResponseRedirect(reverse("integrations:credentials"))


def _saved_message(credential: ProviderCredential) -> str:
    if credential.verification == ProviderCredential.Verification.VERIFIED:
        return f"{credential.name} saved: {PROVIDER_NAMES[credential.provider]} accepted it."
    return f"{credential.name} saved. {credential.verification_message}"


def _credential(view, credential_id) -> ProviderCredential:
    return get_object_or_404(selectors.credential_list(tenant=view.tenant), pk=credential_id)


class CredentialReplaceView(FormPage):
    template_name = "integrations/credential_form.html"
    form_class = CredentialSecretForm

    @cached_property
    def credential(self) -> ProviderCredential:
        return _credential(self, self.kwargs["credential_id"])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "provider": self.credential.provider}

    def get_context_data(self, **kwargs):
        credential = self.credential
        return super().get_context_data(
            credential=credential,
            provider_label=credential.get_provider_display(),
            page_title=f"Replace the secret of {credential.name}",
            **kwargs,
        )

    def form_valid(self, form):
        try:
            credential = services.credential_update_secret(
                credential=self.credential, secret=form.secret(), actor=self.audit_actor()
            )
        except ApplicationError as exc:
            return self.refused(form, exc)
        messages.success(self.request, _saved_message(credential))
        return HttpResponseRedirect(reverse("integrations:credentials"))


class CredentialVerifyView(ActionView):
    def post(self, request, credential_id):
        try:
            credential = services.credential_verify(
                credential=_credential(self, credential_id), actor=self.audit_actor()
            )
        except ApplicationError as exc:  # its key is gone: the message names the credential, never the secret
            messages.error(request, exc.message)
        else:
            ok = {"verified": True, "failed": False}.get(credential.verification)
            said = verdict(credential.provider, ok, credential.verification_message)
            if ok:
                messages.success(request, f"{PROVIDER_NAMES[credential.provider]} accepted {credential.name}.")
            elif ok is False:
                messages.error(request, f"{credential.name}: {said}")
            else:
                messages.info(request, f"{credential.name}: {said}")
        return HttpResponseRedirect(reverse("integrations:credentials"))


class CredentialDeleteView(ActionView):
    def post(self, request, credential_id):
        credential = _credential(self, credential_id)
        name = credential.name
        services.credential_delete(credential=credential, actor=self.audit_actor())
        messages.success(
            request, f"{name} deleted. Backend services that use ${{{name}}} will fail until it is added again."
        )
        return HttpResponseRedirect(reverse("integrations:credentials"))


# --- backend services -----------------------------------------------------------------------------


class BackendListView(DeveloperPage, ListView):
    template_name = "integrations/backends.html"
    context_object_name = "backends"
    paginate_by = 25
    page_title = "Backend services"

    def get_queryset(self):
        return selectors.backend_service_list_with_last_call(tenant=self.tenant)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for backend in context["backends"]:
            outcome = backend.last_outcome
            backend.last_outcome_label = OutboundRequest.Outcome(outcome).label if outcome else ""
        return context


class BackendCreateView(FormPage):
    template_name = "integrations/backend_form.html"
    form_class = BackendServiceForm
    page_title = "New backend service"

    def form_valid(self, form):
        name = form.cleaned_data["name"]
        if selectors.backend_service_list(tenant=self.tenant).filter(name=name).exists():
            form.add_error("name", "A backend service with this name already exists.")
            return self.form_invalid(form)
        try:
            services.backend_service_save(tenant=self.tenant, name=name, actor=self.audit_actor(), **form.settings())
        except ApplicationError as exc:
            return self.refused(form, exc)
        messages.success(self.request, f"Backend service {name} created.")
        return HttpResponseRedirect(reverse("integrations:backends"))


class BackendEditView(FormPage):
    template_name = "integrations/backend_form.html"
    form_class = BackendServiceForm

    @cached_property
    def service(self) -> BackendService:
        return get_object_or_404(selectors.backend_service_list(tenant=self.tenant), pk=self.kwargs["service_id"])

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "editing": True}

    def get_initial(self):
        return {name: getattr(self.service, name) for name in BackendServiceForm.base_fields}

    def get_context_data(self, **kwargs):
        title = f"Edit backend service {self.service.name}"
        return super().get_context_data(service=self.service, page_title=title, **kwargs)

    def form_valid(self, form):
        service = self.service
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if not changes:
            messages.info(self.request, "Nothing changed.")
            return HttpResponseRedirect(reverse("integrations:backends"))
        try:
            services.backend_service_save(tenant=self.tenant, name=service.name, actor=self.audit_actor(), **changes)
        except ApplicationError as exc:
            return self.refused(form, exc)
        messages.success(self.request, f"Backend service {service.name} saved.")
        return HttpResponseRedirect(reverse("integrations:backends"))


class BackendDeleteView(ActionView):
    def post(self, request, service_id):
        service = get_object_or_404(selectors.backend_service_list(tenant=self.tenant), pk=service_id)
        services.backend_service_delete(service=service, actor=self.audit_actor())
        messages.success(request, f"Backend service {service.name} deleted.")
        return HttpResponseRedirect(reverse("integrations:backends"))
