"""Dashboard pages of the billing app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("usage/", views.UsageView.as_view(), name="usage"),
    path("usage/export.csv", views.UsageExportView.as_view(), name="export"),
    path("usage/reports/<uuid:report_id>.csv", views.UsageReportDownloadView.as_view(), name="report"),
]
