"""Top-level URLs: the tenant dashboard, the REST API, the staff admin, probes, Prometheus metrics."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django_prometheus.exports import ExportToDjangoView

from core import health
from voiceapp.web.urls import auth_urlpatterns


class FaviconView(RedirectView):
    """/favicon.ico -> the static icon (its URL resolved per request: the static manifest may not exist at import)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs):
        return static("voiceapp/favicon.svg")


admin.site.site_header = "Voice by aiConnected — staff admin"
admin.site.site_title = "Voice by aiConnected"
admin.site.index_title = "Platform administration"

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", ExportToDjangoView, name="prometheus-django-metrics"),
    # Browsers ask for /favicon.ico whatever the page says (and the admin names none): not a 404 on every page.
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("admin/", admin.site.urls),
    path("v1/", include("voiceapp.api.urls")),
    path("carriers/twilio/", include("telephony.carriers.twilio.urls")),  # Twilio's signed webhooks
    path("demo-backend/", include("voiceapp.demo_backend.urls")),  # DEMO ONLY: 404 unless DEBUG and seeded
    # The dashboard: each app serves its own pages (`<app>/web_urls.py`, namespaced by app).
    path("", include("voiceapp.web.urls")),
    path("", include("agents.web_urls")),
    path("", include("voice.web_urls")),
    path("", include("telephony.web_urls")),
    path("", include("calls.web_urls")),
    path("", include("billing.web_urls")),
    path("", include("integrations.web_urls")),
    *auth_urlpatterns,
]

handler400 = "core.api.exceptions.handler400"
handler404 = "core.api.exceptions.handler404"
handler500 = "core.api.exceptions.handler500"
