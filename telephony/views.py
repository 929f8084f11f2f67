"""Dashboard pages of the telephony app: the tenant's phone numbers and which agent answers each."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import ListView

from agents.selectors import agent_list
from core.errors import ApplicationError
from telephony import selectors, services
from telephony.carriers.twilio.numbers import twilio_setup
from telephony.forms import NumberAssignForm
from telephony.models import GoToConnection
from tenants.web import TenantPageMixin


class NumberListView(TenantPageMixin, ListView):
    """The tenant's numbers, each with a small form to route it to an agent (write role)."""

    template_name = "telephony/numbers.html"
    context_object_name = "numbers"
    paginate_by = 25
    page_title = "Phone numbers"
    nav_section = "numbers"

    def get_queryset(self):
        return selectors.phone_number_list(tenant=self.tenant).select_related("agent")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["agents"] = list(agent_list(tenant=self.tenant))
        context["goto_connection"] = GoToConnection.objects.for_tenant(self.tenant).first()
        context["is_tenant_admin"] = self.allows("admin")
        context["twilio"] = twilio_setup(self.request, self.tenant)
        return context


class NumberAssignView(NumberListView):
    """POST agent=<id or empty>: route the number to that agent, through the same service as the API."""

    http_method_names = ["post"]

    def post(self, request, number_id):
        number = get_object_or_404(selectors.phone_number_list(tenant=self.tenant), pk=number_id)
        form = NumberAssignForm(request.POST, tenant=self.tenant)
        if form.is_valid():
            agent = form.cleaned_data["agent"]
            try:
                services.phone_number_update(number=number, agent=agent, actor=self.audit_actor())
            except ApplicationError as exc:
                form.add_service_error(exc)
            else:
                done = f"{number.e164} is now answered by {agent.name}." if agent else f"{number.e164} is unassigned."
                messages.success(request, done)
                return HttpResponseRedirect(self._back_to_list())
        # The list as it was, with the error next to this number's form.
        self.object_list = self.get_queryset()
        context = self.get_context_data(failed_number_id=number.pk, failed_form=form)
        return self.render_to_response(context, status=400)

    def _back_to_list(self) -> str:
        page = self.request.GET.get("page", "")
        url = reverse("telephony:numbers")
        return f"{url}?page={page}" if page.isdigit() and page != "1" else url
