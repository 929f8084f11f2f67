"""Dashboard endpoints of the voice runtime."""

from django.urls import path

from voice import views

app_name = "voice"

urlpatterns = [
    path("voices/<uuid:voice_id>/preview.wav", views.VoicePreviewView.as_view(), name="preview"),
]
