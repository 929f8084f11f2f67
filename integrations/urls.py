from django.urls import path

from integrations import apis
from integrations.webhooks import apis as webhook_apis

urlpatterns = [
    # --- credentials
    path("credentials", apis.CredentialListCreateApi.as_view(), name="credentials"),
    path("credentials/<uuid:credential_id>", apis.CredentialDetailApi.as_view(), name="credential-detail"),
    path("credentials/<uuid:credential_id>/verify", apis.CredentialVerifyApi.as_view(), name="credential-verify"),
    path("backend-services", apis.BackendServiceListCreateApi.as_view(), name="backend-services"),
    path("backend-services/<uuid:service_id>", apis.BackendServiceDetailApi.as_view(), name="backend-service-detail"),
]

webhook_urlpatterns = [
    path("webhooks", webhook_apis.WebhookListCreateApi.as_view(), name="webhooks"),
    path("webhooks/<uuid:webhook_id>", webhook_apis.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<uuid:webhook_id>/rotate-secret",
        webhook_apis.WebhookRotateSecretApi.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<uuid:webhook_id>/deliveries",
        webhook_apis.WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path("webhooks/<uuid:webhook_id>/replay", webhook_apis.WebhookReplayApi.as_view(), name="webhook-replay"),
    path(
        "webhook-deliveries/<uuid:delivery_id>",
        webhook_apis.WebhookDeliveryDetailApi.as_view(),
        name="webhook-delivery-detail",
    ),
    path(
        "webhook-deliveries/<uuid:delivery_id>/replay",
        webhook_apis.WebhookDeliveryReplayApi.as_view(),
        name="webhook-delivery-replay",
    ),
    path("webhook-event-types", webhook_apis.WebhookEventTypesApi.as_view(), name="webhook-event-types"),
]
urlpatterns += webhook_urlpatterns
