from django.urls import path

from billing import apis

urlpatterns = [
    path("usage", apis.UsageApi.as_view(), name="usage"),
    path("usage/reports", apis.UsageReportListApi.as_view(), name="usage-reports"),
    path("usage/reports/<uuid:report_id>", apis.UsageReportDownloadApi.as_view(), name="usage-report-download"),
]
