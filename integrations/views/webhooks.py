"""Webhook endpoints: list, create, edit, delete, test event, signing secret, delivery log and replay."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views import View
from django.views.generic import ListView

from core.errors import ApplicationError
from integrations import secret_once
from integrations.forms import (
    WebhookForm,
    WebhookReplayForm,
    WebhookRotateForm,
)
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.views.base import ADMIN_WRITES, ActionView, DeveloperPage, FormPage, secret_page
from integrations.webhooks import selectors as webhook_selectors
from integrations.webhooks import services as webhook_services
from integrations.webhooks.catalog import EVENT_TYPES

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
