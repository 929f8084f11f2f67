"""Dashboard pages of the calls app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from calls import live_views, views

app_name = "calls"

urlpatterns = [
    path("calls/", views.CallListView.as_view(), name="list"),
    path("calls/new/", views.OutboundCallView.as_view(), name="outbound"),
    path("calls/export.csv", views.CallExportView.as_view(), name="export"),
    path("calls/<uuid:call_id>/", views.CallDetailView.as_view(), name="detail"),
    path("calls/<uuid:call_id>/recording/<uuid:recording_id>", views.RecordingView.as_view(), name="recording"),
    path("live/", live_views.LiveCallsView.as_view(), name="live"),
    path("live/<uuid:call_id>/", live_views.LiveCallsView.as_view(), name="live-call"),
]
