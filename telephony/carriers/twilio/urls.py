"""Twilio's webhooks (included by voiceapp/urls.py under /carriers/twilio/)."""

from django.urls import path

from telephony.carriers.twilio import webhooks

urlpatterns = [
    path("voice", webhooks.voice, name="twilio-voice"),
    path("status", webhooks.status, name="twilio-status"),
    path("answer", webhooks.answer, name="twilio-answer"),
]
