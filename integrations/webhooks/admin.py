"""Staff admin for webhook endpoints, their deliveries and attempts.

Endpoints are written through the services: a new endpoint's signing secret, and a rotated one, is
shown once in a message and never again; deliveries and attempts are read-only records, replayable.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from core.admin_base import ReadOnlyInline, RecordAdminMixin, TenantOwnedAdmin, admin_changelist_link, adopt_created
from core.errors import ApplicationError
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks import services
from integrations.webhooks.catalog import ALL, EVENT_TYPES

EVENT_CHOICES = [
    (ALL, "* (every event type)"),
    *((name, f"{name}: {e.description}") for name, e in EVENT_TYPES.items()),
]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("tenant", "url", "description", "event_types", "enabled")

    def clean(self):
        cleaned = super().clean()
        try:
            if cleaned.get("url"):
                services.clean_url(cleaned["url"])
        except ApplicationError as exc:
            self.add_error("url", exc.fields["url"])
        return cleaned


class ReplaySinceForm(forms.Form):
    since = forms.DateTimeField(help_text="UTC, e.g. 2026-11-22 08:00")


def _actor(request) -> dict:
    return {"actor_user": request.user}


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantOwnedAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "tenant", "enabled", "disabled_reason", "events", "failing_since", "last_success_at")
    list_filter = ("enabled", "disabled_reason")
    search_fields = ("url", "description", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("tenant__name", "created_at")
    readonly_fields = (
        "deliveries_link", "disabled_reason", "disabled_at", "secret_rotated_at", "previous_secret_expires_at",
        "failing_since", "last_success_at", "created_at", "updated_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("tenant", "url", "description", "event_types", "enabled")}),
        (
            "Health",
            {"fields": ("disabled_reason", "disabled_at", "failing_since", "last_success_at", "deliveries_link")},
        ),
        (
            "Signing secret",
            {
                "fields": ("secret_rotated_at", "previous_secret_expires_at"),
                "description": "Shown once, when the endpoint is created or the secret rotated (action below).",
            },
        ),
        ("Overview", {"fields": ("created_at", "updated_at")}),
    )
    actions = ("enable_endpoints", "disable_endpoints", "rotate_secrets", "replay_failed_since")

    @admin.display(description="Events")
    def events(self, obj):
        return ", ".join(obj.event_types)

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj):
        return admin_changelist_link(WebhookDelivery, "Deliveries of this endpoint", endpoint__id__exact=obj.pk)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in ("url", "description", "event_types", "enabled")}
        if change:
            services.webhook_endpoint_update(endpoint=obj, actor=_actor(request), **fields)
            return
        issued = services.webhook_endpoint_create(tenant=data["tenant"], actor=_actor(request), **fields)
        adopt_created(obj, issued.endpoint)
        messages.success(request, f"Copy this signing secret now, it will not be shown again: {issued.secret}")

    def delete_model(self, request, obj):
        services.webhook_endpoint_delete(endpoint=obj, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_delete(endpoint=endpoint, actor=_actor(request))

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable_endpoints(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_update(endpoint=endpoint, enabled=True, actor=_actor(request))
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable_endpoints(self, request, queryset):
        for endpoint in queryset:
            services.webhook_endpoint_update(endpoint=endpoint, enabled=False, actor=_actor(request))
        self.message_user(request, f"{queryset.count()} endpoint(s) disabled.", messages.SUCCESS)

    @admin.action(description="Rotate signing secrets (the old one signs for 24 h more)", permissions=["change"])
    def rotate_secrets(self, request, queryset):
        for endpoint in queryset:
            issued = services.webhook_endpoint_rotate_secret(endpoint=endpoint, actor=_actor(request))
            messages.success(request, f"New signing secret of {endpoint.url}, shown once: {issued.secret}")

    @admin.action(description="Replay failed deliveries since…", permissions=["change"])
    def replay_failed_since(self, request, queryset):
        form = ReplaySinceForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            return self._replay(request, queryset, form.cleaned_data["since"])
        if not form.is_bound:
            form = ReplaySinceForm(initial={"since": timezone.now() - timedelta(hours=24)})
        context = {**self.admin_site.each_context(request), "title": "Replay failed deliveries", "form": form}
        context["endpoints"] = queryset.select_related("tenant")
        return TemplateResponse(request, "admin/integrations/webhookendpoint/replay_since.html", context)

    def _replay(self, request, queryset, since) -> None:
        replayed = 0
        for endpoint in queryset:
            try:
                replayed += services.webhook_deliveries_replay_failed(
                    endpoint=endpoint, since=since, actor=_actor(request)
                )
            except ApplicationError as exc:
                self.message_user(request, f"{endpoint.url}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{replayed} failed deliveries queued again.", messages.SUCCESS)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "duration_ms", "outcome", "status_code", "error", "response_excerpt")
    show_change_link = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """The outbox: one row per event and endpoint, with every attempt; replay re-sends with the same webhook-id."""

    list_display = (
        "created_at", "tenant", "event_type", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at",
        "delivered_at",
    )  # fmt: skip
    list_filter = ("status", "event_type")
    search_fields = ("message_id", "endpoint__url", "tenant__name", "tenant__slug")
    list_select_related = ("tenant", "endpoint")
    uuid_search_fields = ("pk", "endpoint")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False
    inlines = (WebhookAttemptInline,)
    fields = (
        "tenant", "endpoint", "message_id", "event_type", "status", "attempts", "cycle_attempts", "next_attempt_at",
        "last_attempt_at", "delivered_at", "last_status_code", "last_error", "replayed_at", "created_at", "body",
    )  # fmt: skip
    actions = ("replay_deliveries",)

    @admin.action(description="Replay selected deliveries")
    def replay_deliveries(self, request, queryset):
        replayed = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                services.webhook_delivery_replay(delivery=delivery, actor=_actor(request))
                replayed += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery.message_id}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{replayed} deliveries queued again.", messages.SUCCESS)
