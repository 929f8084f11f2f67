"""Dashboard pages of the agents app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from agents import views

app_name = "agents"

urlpatterns = [
    path("agents/", views.AgentListView.as_view(), name="list"),
    path("agents/new/", views.AgentCreateView.as_view(), name="create"),
    path("agents/<uuid:agent_id>/", views.AgentDetailView.as_view(), name="detail"),
    path("agents/<uuid:agent_id>/edit/", views.AgentEditView.as_view(), name="edit"),
    path("agents/<uuid:agent_id>/delete/", views.AgentDeleteView.as_view(), name="delete"),
    path("agents/<uuid:agent_id>/duplicate/", views.AgentDuplicateView.as_view(), name="duplicate"),
    path("agents/<uuid:agent_id>/documents/", views.DocumentAddView.as_view(), name="document-add"),
    path(
        "agents/<uuid:agent_id>/documents/<uuid:document_id>/delete/",
        views.DocumentDeleteView.as_view(),
        name="document-delete",
    ),
    path(
        "agents/<uuid:agent_id>/documents/<uuid:document_id>/retry/",
        views.DocumentRetryView.as_view(),
        name="document-retry",
    ),
    path("agents/<uuid:agent_id>/documents/status/", views.DocumentStatusView.as_view(), name="document-status"),
    path("voices/", views.VoiceListView.as_view(), name="voices"),
]
