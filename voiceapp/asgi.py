"""ASGI entry point under Daphne: HTTP to Django, websockets to the apps' routing, channel workers.

Each app that serves websockets or runs channel workers has a `routing.py` with
`websocket_urlpatterns` and/or `channel_routes` ({channel name: consumer}); they are collected here.
"""

import os
from importlib import import_module

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
# Set up Django (apps, models) before anything imports a consumer.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from tenants.realtime import OriginOrApiKeyValidator  # noqa: E402

# This process runs agent sessions (test calls, and the media worker's channels): their livekit plugins
# must be registered on the main thread, which is the one importing this module.
from voice.engines import load_plugins  # noqa: E402

load_plugins()

ROUTED_APPS = ("tenants", "agents", "telephony", "calls", "billing", "integrations")


def _collect_routes() -> tuple[list, dict]:
    websocket_urlpatterns: list = []
    channel_routes: dict = {}
    for app_name in ROUTED_APPS:
        try:
            routing = import_module(f"{app_name}.routing")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app_name}.routing":
                raise
            continue
        websocket_urlpatterns += getattr(routing, "websocket_urlpatterns", [])
        channel_routes.update(getattr(routing, "channel_routes", {}))
    return websocket_urlpatterns, channel_routes


websocket_urlpatterns, channel_routes = _collect_routes()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginOrApiKeyValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "channel": ChannelNameRouter(channel_routes),
    }
)
