"""The public REST API, version 1. A new version is a new include beside this one."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api.exceptions import api_not_found

app_name = "v1"

urlpatterns = [
    path("", include("agents.urls")),
    path("", include("calls.urls")),
    path("", include("telephony.urls")),
    path("", include("billing.urls")),
    path("", include("tenants.urls")),
    path("", include("integrations.urls")),
    path("schema", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    # [\s\S], not `.`: a path with an encoded newline (%0A) is this JSON 404 too, not Django's page.
    re_path(r"^[\s\S]*$", api_not_found),  # unknown /v1/ URLs answer in the API's error shape, DEBUG or not
]
