"""Dashboard pages of the calls app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from calls import live_views

app_name = "calls"

urlpatterns = [
    path("live/", live_views.LiveCallsView.as_view(), name="live"),
    path("live/<uuid:call_id>/", live_views.LiveCallsView.as_view(), name="live-call"),
]
