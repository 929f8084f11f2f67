"""Provider credentials: masked, verified on save, replaced, checked again, deleted."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.generic import ListView

from core.errors import ApplicationError
from integrations import selectors, services
from integrations.forms import (
    CredentialCreateForm,
    CredentialSecretForm,
)
from integrations.models import ProviderCredential
from integrations.verification import PROVIDER_NAMES, verdict
from integrations.views.base import ADMIN_ONLY, ActionView, DeveloperPage, FormPage

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
