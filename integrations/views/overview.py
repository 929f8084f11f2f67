"""The Developers overview page."""

from django.views.generic import TemplateView

from integrations import selectors
from integrations.models import ProviderCredential
from integrations.views.base import DeveloperPage
from integrations.webhooks import selectors as webhook_selectors
from tenants import selectors as tenant_selectors

# --- overview -------------------------------------------------------------------------------------


class DevelopersView(DeveloperPage, TemplateView):
    template_name = "integrations/developers.html"
    page_title = "Developers"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoints = webhook_selectors.webhook_endpoint_list(tenant=self.tenant)
        context.update(
            webhook_count=endpoints.count(),
            webhooks_disabled=endpoints.filter(enabled=False).count(),
            webhooks_failing=endpoints.filter(enabled=True, failing_since__isnull=False).count(),
            backend_count=selectors.backend_service_list(tenant=self.tenant).count(),
        )
        if self.allows("admin"):
            credentials = selectors.credential_list(tenant=self.tenant)
            context.update(
                api_key_count=tenant_selectors.api_key_list(tenant=self.tenant).usable().count(),
                credential_count=credentials.count(),
                credentials_failed=credentials.filter(verification=ProviderCredential.Verification.FAILED).count(),
            )
        return context
