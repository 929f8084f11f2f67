"""Rebuild the live call state (Redis) from the stored call events: after Redis lost its data."""

from django.core.management.base import BaseCommand

from calls import live_state


class Command(BaseCommand):
    help = "Rebuild call:{id}:state and call:{id}:context of active calls (and recently ended ones) from stored events."

    def add_arguments(self, parser):
        parser.add_argument("--call", action="append", default=[], help="Only this call id (repeatable).")

    def handle(self, *args, call, **options):
        if call:
            for call_id in call:
                live_state.rebuild(call_id)
            count = len(call)
        else:
            count = live_state.rebuild_all()
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the live state of {count} calls."))
