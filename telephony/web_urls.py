"""Dashboard pages of the telephony app (mounted at the site root by voiceapp/urls.py)."""

from django.urls import path

from telephony import views

app_name = "telephony"

urlpatterns = [
    path("numbers/", views.NumberListView.as_view(), name="numbers"),
    path("numbers/<uuid:number_id>/assign/", views.NumberAssignView.as_view(), name="number-assign"),
]
