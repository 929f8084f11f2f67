"""API keys: list, create (the secret shown once), revoke."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View
from django.views.generic import ListView

from core.errors import ApplicationError
from integrations import secret_once
from integrations.forms import (
    ApiKeyForm,
)
from integrations.views.base import ADMIN_ONLY, ActionView, DeveloperPage, FormPage, secret_page
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services

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
