"""The Celery app: queues default, webhooks and reports; beat reads its schedule from the database."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")

app = Celery("voiceapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("webhooks"), Queue("reports"))
app.autodiscover_tasks()
