"""Websocket routes and channel workers of the telephony app (collected by voiceapp/asgi.py)."""

from django.conf import settings
from django.urls import path

from telephony.consumers import BrowserCallConsumer, MediaWorkerConsumer

websocket_urlpatterns = [path("ws/v1/test-calls", BrowserCallConsumer.as_asgi())]

channel_routes = {settings.MEDIA_WORKER_CHANNEL: MediaWorkerConsumer.as_asgi()}
