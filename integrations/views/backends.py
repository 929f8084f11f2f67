"""Backend services: the gateway's configuration of a tenant's own APIs."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.functional import cached_property
from django.views.generic import ListView

from core.errors import ApplicationError
from integrations import selectors, services
from integrations.forms import (
    BackendServiceForm,
)
from integrations.models import BackendService, OutboundRequest
from integrations.views.base import ActionView, DeveloperPage, FormPage

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
