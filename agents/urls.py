from django.urls import path

from agents import apis

urlpatterns = [
    path("agents", apis.AgentListCreateApi.as_view(), name="agents"),
    path("agents/<uuid:agent_id>", apis.AgentDetailApi.as_view(), name="agent-detail"),
    path("agents/<uuid:agent_id>/documents", apis.DocumentListCreateApi.as_view(), name="agent-documents"),
    path(
        "agents/<uuid:agent_id>/documents/<uuid:document_id>",
        apis.DocumentDetailApi.as_view(),
        name="agent-document-detail",
    ),
    path(
        "agents/<uuid:agent_id>/documents/<uuid:document_id>/retry",
        apis.DocumentRetryApi.as_view(),
        name="agent-document-retry",
    ),
    path("voices", apis.VoiceListCreateApi.as_view(), name="voices"),
]
