from django.urls import path

from billing import apis

urlpatterns = [
    path("usage", apis.UsageApi.as_view(), name="usage"),
]
