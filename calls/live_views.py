"""The live calls page: active calls as they start and end, one call's conversation as it happens.

The page renders what is true now (the active calls, a watched call's stored turns) and its
JavaScript keeps it current over `/ws/v1/live` (calls.consumers.LiveCallsConsumer).
"""

from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView

from calls import presentation, selectors
from tenants.web import TenantPageMixin


class LiveCallsView(TenantPageMixin, TemplateView):
    template_name = "calls/live.html"
    page_title = "Live calls"
    nav_section = "live"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        active = selectors.call_list_active(tenant=self.tenant)
        call_id = kwargs.get("call_id")
        if call_id is not None:
            active = active.exclude(pk=call_id)  # "Other calls": the watched one is shown above, not twice
            context["watched"] = get_object_or_404(
                selectors.call_list(tenant=self.tenant).select_related("agent"), pk=call_id
            )
            context["page_title"] = f"Live: {presentation.call_title(context['watched'])}"
        context["active_calls"] = active[:200]
        return context
