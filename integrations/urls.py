from django.urls import path

from integrations import apis

urlpatterns = [
    # --- credentials
    path("credentials", apis.CredentialListCreateApi.as_view(), name="credentials"),
    path("credentials/<uuid:credential_id>", apis.CredentialDetailApi.as_view(), name="credential-detail"),
    path("credentials/<uuid:credential_id>/verify", apis.CredentialVerifyApi.as_view(), name="credential-verify"),
    path("backend-services", apis.BackendServiceListCreateApi.as_view(), name="backend-services"),
    path("backend-services/<uuid:service_id>", apis.BackendServiceDetailApi.as_view(), name="backend-service-detail"),
]
