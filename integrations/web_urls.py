"""Dashboard pages of the integrations app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("developers/", views.DevelopersView.as_view(), name="developers"),
    # API keys
    path("developers/api-keys/", views.ApiKeyListView.as_view(), name="api-keys"),
    path("developers/api-keys/new/", views.ApiKeyCreateView.as_view(), name="api-key-create"),
    path("developers/api-keys/<uuid:key_id>/created/", views.ApiKeyCreatedView.as_view(), name="api-key-created"),
    path("developers/api-keys/<uuid:key_id>/revoke/", views.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    # webhook endpoints and their deliveries
    path("developers/webhooks/", views.WebhookListView.as_view(), name="webhooks"),
    path("developers/webhooks/new/", views.WebhookCreateView.as_view(), name="webhook-create"),
    path("developers/webhooks/<uuid:webhook_id>/", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("developers/webhooks/<uuid:webhook_id>/secret/", views.WebhookSecretView.as_view(), name="webhook-secret"),
    path("developers/webhooks/<uuid:webhook_id>/edit/", views.WebhookEditView.as_view(), name="webhook-edit"),
    path("developers/webhooks/<uuid:webhook_id>/delete/", views.WebhookDeleteView.as_view(), name="webhook-delete"),
    path(
        "developers/webhooks/<uuid:webhook_id>/rotate-secret/",
        views.WebhookRotateView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("developers/webhooks/<uuid:webhook_id>/test/", views.WebhookTestView.as_view(), name="webhook-test"),
    path("developers/webhooks/<uuid:webhook_id>/replay/", views.WebhookReplayView.as_view(), name="webhook-replay"),
    path(
        "developers/webhook-deliveries/<uuid:delivery_id>/replay/",
        views.DeliveryReplayView.as_view(),
        name="delivery-replay",
    ),
    # provider credentials
    path("developers/credentials/", views.CredentialListView.as_view(), name="credentials"),
    path("developers/credentials/new/", views.CredentialCreateView.as_view(), name="credential-create"),
    path(
        "developers/credentials/<uuid:credential_id>/replace/",
        views.CredentialReplaceView.as_view(),
        name="credential-replace",
    ),
    path(
        "developers/credentials/<uuid:credential_id>/verify/",
        views.CredentialVerifyView.as_view(),
        name="credential-verify",
    ),
    path(
        "developers/credentials/<uuid:credential_id>/delete/",
        views.CredentialDeleteView.as_view(),
        name="credential-delete",
    ),
    # backend services
    path("developers/backends/", views.BackendListView.as_view(), name="backends"),
    path("developers/backends/new/", views.BackendCreateView.as_view(), name="backend-create"),
    path("developers/backends/<uuid:service_id>/edit/", views.BackendEditView.as_view(), name="backend-edit"),
    path("developers/backends/<uuid:service_id>/delete/", views.BackendDeleteView.as_view(), name="backend-delete"),
]
