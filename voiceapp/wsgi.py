"""WSGI entry point: the web process (admin, dashboard, REST API) under Gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")

application = get_wsgi_application()
