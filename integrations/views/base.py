"""The Developers pages' shared parts: role rules per page, forms and actions, secrets shown once."""

from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views import View
from django.views.generic import FormView

from core.errors import ApplicationError
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
