from django.urls import path

from calls import apis

urlpatterns = [
    path("calls", apis.CallListCreateApi.as_view(), name="calls"),
    path("calls/<uuid:call_id>", apis.CallDetailApi.as_view(), name="call-detail"),
    path("calls/<uuid:call_id>/recording", apis.CallRecordingApi.as_view(), name="call-recording"),
    path("calls/<uuid:call_id>/end", apis.CallEndApi.as_view(), name="call-end"),
    path("calls/<uuid:call_id>/transfer", apis.CallTransferApi.as_view(), name="call-transfer"),
]
