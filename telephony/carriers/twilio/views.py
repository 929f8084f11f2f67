"""The Phone numbers page's Twilio part: importing the account's numbers (a tenant admin's button)."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views import View

from core.errors import ApplicationError
from telephony.carriers.twilio.numbers import twilio_numbers_import
from tenants.web import TenantPageMixin


class TwilioImportView(TenantPageMixin, View):
    """POST (point=1 to also set the webhooks at Twilio): import the tenant's Twilio numbers, then say what happened."""

    http_method_names = ["post"]
    required_scopes = {"POST": "admin"}

    def post(self, request):
        point = request.POST.get("point") == "1"
        try:
            report = twilio_numbers_import(tenant=self.tenant, point_webhooks=point, actor=self.audit_actor())
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            said = [f"Imported {len(report.imported)} number(s) from Twilio."]
            if point:
                said.append(f"{len(report.pointed)} now send their calls here.")
            said += [f"{e164}: {why}." for e164, why in report.skipped.items()]
            messages.success(request, " ".join(said))
        return HttpResponseRedirect(reverse("telephony:numbers"))
