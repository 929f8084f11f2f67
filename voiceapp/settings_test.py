"""Test settings: the production settings with a fast password hasher and in-process Celery.

DATABASE_URL and REDIS_URL still decide the database and the cache, so CI runs the same tests
against PostgreSQL and Redis that a bare checkout runs against SQLite and local memory.
"""

from voiceapp.settings import *  # noqa: F403
from voiceapp.settings import CACHES, LOGGING

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Keep a test run's cache keys apart from a platform sharing the same Redis.
CACHES["default"]["KEY_PREFIX"] = "voiceapp-test"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING["root"]["level"] = "WARNING"
