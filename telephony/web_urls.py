"""Dashboard pages of the telephony app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from telephony import goto_views, views
from telephony.carriers.twilio.views import TwilioImportView

app_name = "telephony"

urlpatterns = [
    path("numbers/", views.NumberListView.as_view(), name="numbers"),
    path("numbers/<uuid:number_id>/assign/", views.NumberAssignView.as_view(), name="number-assign"),
    path("numbers/twilio/import/", TwilioImportView.as_view(), name="twilio-import"),
    path("numbers/goto/connect/", goto_views.GoToConnectView.as_view(), name="goto-connect"),
    path("numbers/goto/callback/", goto_views.GoToCallbackView.as_view(), name="goto-callback"),
    path(
        "numbers/goto/<uuid:connection_id>/disconnect/",
        goto_views.GoToDisconnectView.as_view(),
        name="goto-disconnect",
    ),
]
