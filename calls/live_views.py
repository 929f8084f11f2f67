"""The live calls page: active calls as they start and end, one call's conversation as it happens.

The page renders what is true now (the active calls, a watched call's stored turns) and its
JavaScript keeps it current over `/ws/v1/live` (calls.consumers.LiveCallsConsumer).
"""

from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView

from calls import presentation, selectors
from voiceapp.web.tenancy import TenantPageMixin


class LiveCallsView(TenantPageMixin, TemplateView):
    template_name = "calls/live.html"
    page_title = "Live calls"
    nav_section = "live"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["active_calls"] = selectors.call_list_active(tenant=self.tenant)[:200]
        call_id = kwargs.get("call_id")
        if call_id is not None:
            context["watched"] = get_object_or_404(
                selectors.call_list(tenant=self.tenant).select_related("agent"), pk=call_id
            )
            context["page_title"] = f"Live: {presentation.call_title(context['watched'])}"
        return context
