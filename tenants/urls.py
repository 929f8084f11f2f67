from django.urls import path

from tenants import apis

urlpatterns = [
    path("api-keys", apis.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api-keys/<uuid:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key-detail"),
]
