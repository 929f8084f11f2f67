"""The periodic jobs and the outbox sweeper, installed into django-celery-beat by `setup_periodic_tasks`."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    cron: str  # minute hour day_of_month month_of_year day_of_week, UTC
    queue: str
    description: str


SCHEDULES = (
    Schedule(
        "aggregate_usage",
        "billing.tasks.aggregate_usage",
        "0 * * * *",
        "default",
        "Hourly: meter calls that ended in the last hours into usage records.",
    ),
    Schedule(
        "generate_daily_report",
        "billing.tasks.generate_daily_report",
        "0 0 * * *",
        "reports",
        "Daily at midnight UTC: yesterday's usage per tenant as a CSV report.",
    ),
    Schedule(
        "cleanup_sessions",
        "calls.tasks.cleanup_sessions",
        "* * * * *",
        "default",
        "Every minute: end calls stuck in setup (a lost carrier event) or open past their maximum duration (a session died).",
    ),
    Schedule(
        "sync_billing",
        "billing.tasks.sync_billing",
        "0 3 1 * *",
        "default",
        "1st of the month 03:00 UTC: draft invoices for the previous month.",
    ),
    Schedule(
        "webhooks_dispatch_due",
        "webhooks.dispatch_due",
        "* * * * *",
        "webhooks",
        "Every minute: queue webhook deliveries whose retry time has come, or whose queued task was lost.",
    ),
    Schedule(
        "dial_due_calls",
        "calls.tasks.dial_due_calls",
        "* * * * *",
        "default",
        "Every minute: dial outbound calls whose dial task was lost; end those not dialled in time.",
    ),
    Schedule(
        "process_missed_transcripts",
        "calls.tasks.process_missed_transcripts",
        "*/10 * * * *",
        "default",
        "Every 10 minutes: post-call processing of ended calls whose processing task was lost.",
    ),
    Schedule(
        "knowledge_embed_due",
        "agents.tasks.knowledge_embed_due",
        "* * * * *",
        "default",
        "Every minute: embed knowledge documents whose retry time has come, or whose task was lost.",
    ),
    Schedule(
        "apply_retention",
        "voiceapp.tasks.apply_retention",
        "30 3 * * *",
        "default",
        "Daily 03:30 UTC: delete what the retention policy (RETENTION_*_DAYS) no longer keeps.",
    ),
)
