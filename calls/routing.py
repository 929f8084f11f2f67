"""Websocket routes of the calls app (collected by voiceapp/asgi.py): live call viewing."""

from django.urls import path

from calls.consumers import LiveCallConsumer, LiveCallsConsumer

websocket_urlpatterns = [
    path("ws/v1/live", LiveCallsConsumer.as_asgi()),
    path("ws/v1/live/calls/<uuid:call_id>", LiveCallConsumer.as_asgi()),
]
