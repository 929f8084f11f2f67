"""Websocket routes and channel workers of the telephony app (collected by voiceapp/asgi.py)."""

from django.conf import settings
from django.urls import path

from telephony.carriers.twilio.consumer import TwilioStreamConsumer
from telephony.consumers import BrowserCallConsumer, MediaWorkerConsumer

websocket_urlpatterns = [
    path("ws/v1/test-calls", BrowserCallConsumer.as_asgi()),
    path("ws/v1/carriers/twilio/stream", TwilioStreamConsumer.as_asgi()),  # Twilio Media Streams (token checked)
]

channel_routes = {settings.MEDIA_WORKER_CHANNEL: MediaWorkerConsumer.as_asgi()}
