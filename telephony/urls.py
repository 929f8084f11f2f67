from django.urls import path

from telephony import apis

urlpatterns = [
    path("numbers", apis.NumberListCreateApi.as_view(), name="numbers"),
    path("numbers/<uuid:number_id>", apis.NumberDetailApi.as_view(), name="number-detail"),
    path("numbers/import-twilio", apis.TwilioNumbersImportApi.as_view(), name="numbers-import-twilio"),
]
