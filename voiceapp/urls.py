"""Top-level URLs: staff admin, probes, Prometheus metrics."""

from django.contrib import admin
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView

from voiceapp import health

admin.site.site_header = "Voice by aiConnected — staff admin"
admin.site.site_title = "Voice by aiConnected"
admin.site.index_title = "Platform administration"

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", ExportToDjangoView, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    path("v1/", include("voiceapp.api.urls")),
]

handler404 = "voiceapp.api.exceptions.handler404"
handler500 = "voiceapp.api.exceptions.handler500"
