"""Without a broker (embedded defaults): send due webhook deliveries every second and run the schedule.

With REDIS_URL the worker and beat do this; here one process does it in-process, so retries and the
periodic jobs still happen on a bare checkout (`make run` can start it beside the web server).
"""

import json
import logging
import time

from celery import current_app as celery_app  # the project's app (voiceapp.celery), set at start-up
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from integrations.webhooks import outbox
from integrations.webhooks.delivery import webhooks_dispatch_due

logger = logging.getLogger(__name__)
SWEEPER_TASK = "webhooks.dispatch_due"  # done every pass here, not once a minute


class Command(BaseCommand):
    help = (
        "Send due webhook deliveries (retries included) every second and run the periodic tasks of "
        "django-celery-beat in this process. For embedded defaults, where no broker runs Celery."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between passes (default 1).")
        parser.add_argument("--once", action="store_true", help="Make one pass and exit.")
        parser.add_argument("--no-schedule", action="store_true", help="Only the webhook outbox, no periodic tasks.")
        parser.add_argument("--force", action="store_true", help="Run even though a broker is configured.")

    def handle(self, *args, interval: float, once: bool, no_schedule: bool, force: bool, **options):
        if outbox.broker_available() and not force:
            raise CommandError("A broker is configured: the Celery worker and beat deliver webhooks (or use --force).")
        celery_app.loader.import_default_modules()  # every app's tasks, as a worker would register them
        self.stdout.write(f"run_outbox: a pass every {interval:g}s{'' if no_schedule else ', with the schedule'}")
        while True:
            if not connection.in_atomic_block:  # as Django does around requests; never inside a transaction
                close_old_connections()
            sent = self.pass_once(schedule=not no_schedule)
            if once:
                self.stdout.write(f"{sent} deliveries attempted")
                return
            time.sleep(0 if sent >= outbox.SWEEP_BATCH else interval)

    def pass_once(self, *, schedule: bool) -> int:
        try:
            sent = webhooks_dispatch_due(inline=True)
        except Exception:  # a database hiccup must not end the loop
            logger.exception("webhook outbox pass failed")
            sent = 0
        if schedule:
            try:
                run_due_periodic_tasks()
            except Exception:  # nor must a failed read of the schedule
                logger.exception("periodic task pass failed")
        return sent


def run_due_periodic_tasks() -> int:
    """Run, here, every enabled periodic task that is due (as beat would queue it); returns how many ran."""
    ran = 0
    for model in PeriodicTask.objects.filter(enabled=True).exclude(task=SWEEPER_TASK):
        due, _next = ModelEntry(model, app=celery_app).is_due()
        task = celery_app.tasks.get(model.task)
        if not due or task is None:
            continue
        model.last_run_at, model.total_run_count = timezone.now(), model.total_run_count + 1
        model.save(update_fields=["last_run_at", "total_run_count"])
        try:
            task.apply(args=json.loads(model.args or "[]"), kwargs=json.loads(model.kwargs or "{}"))
        except Exception:
            logger.exception("periodic task %s failed", model.name)
        ran += 1
    return ran
