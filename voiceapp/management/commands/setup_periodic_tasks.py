"""Install the platform's periodic tasks into django-celery-beat (idempotent)."""

import json

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from voiceapp.schedules import SCHEDULES, Schedule


class Command(BaseCommand):
    help = (
        "Create the platform's periodic tasks (hourly usage, daily report, weekly cleanup, monthly billing, "
        "the webhook outbox sweeper every minute, missed post-call processing, daily retention). "
        "Tasks that exist keep the schedule staff set in the admin unless --reset is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Restore the default schedule of existing tasks.")

    @transaction.atomic
    def handle(self, *args, reset: bool = False, **options):
        for schedule in SCHEDULES:
            task = PeriodicTask.objects.filter(name=schedule.name).first()
            if task is None or reset:
                verb = "reset" if task else "created"
                PeriodicTask.objects.update_or_create(name=schedule.name, defaults=self._fields(schedule))
            else:
                verb = "kept (exists)"
            self.stdout.write(f"{schedule.name:<28} {schedule.cron:<14} {schedule.task} [{verb}]")

    @staticmethod
    def _fields(schedule: Schedule) -> dict:
        minute, hour, day_of_month, month_of_year, day_of_week = schedule.cron.split()
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone="UTC",
        )
        return {
            "task": schedule.task,
            "crontab": crontab,
            "interval": None,
            "queue": schedule.queue,
            "description": schedule.description,
            "kwargs": json.dumps({}),
            "enabled": True,
        }
