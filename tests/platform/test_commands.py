"""seed_demo and setup_periodic_tasks are idempotent and do what they print."""

import hashlib
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from agents.models import Agent, KnowledgeDocument, Voice
from billing.models import CreditBucket, Plan, Subscription
from telephony.models import PhoneNumber
from tenants.models import ApiKey, AuditLog, Membership, Tenant, User
from voiceapp.schedules import SCHEDULES

MODELS = [
    User,
    Tenant,
    Membership,
    ApiKey,
    AuditLog,
    Voice,
    Agent,
    KnowledgeDocument,
    PhoneNumber,
    Plan,
    Subscription,
    CreditBucket,
]


def snapshot() -> dict:
    """Every row of the seeded models, as comparable values (timestamps left out)."""
    skip = {"created_at", "updated_at", "last_login", "date_joined", "started_at", "valid_from"}
    return {
        model.__name__: sorted(
            (
                tuple(
                    (f.attname, str(getattr(obj, f.attname)))
                    for f in model._meta.concrete_fields
                    if f.attname not in skip
                )
            )
            for obj in model._base_manager.all()
        )
        for model in MODELS
    }


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_a_usable_demo(settings):
    settings.DEBUG = True
    output = run("seed_demo")
    tenant = Tenant.objects.get(slug="demo-dental")
    agent = Agent.objects.for_tenant(tenant).get()
    number = PhoneNumber.objects.dangerously_unscoped().get(e164="+15550100001")
    secret = re.search(r"(vk_live_\S+)\s+<- shown once", output).group(1)
    key = ApiKey.objects.for_tenant(tenant).get()
    assert number.tenant == tenant and number.agent == agent
    assert agent.greeting_message and agent.tools[0]["name"] == "check_availability"
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert Membership.objects.get(tenant=tenant).role == "owner"
    assert User.objects.get(username="admin").is_staff
    assert User.objects.get(username="demo").check_password("demo-owner-password")
    assert Subscription.objects.get(tenant=tenant).plan.slug == "starter"


@pytest.mark.django_db
def test_seed_demo_twice_gives_the_same_data(settings):
    settings.DEBUG = True
    run("seed_demo")
    first = snapshot()
    output = run("seed_demo")
    assert snapshot() == first
    assert "issued earlier" in output
    assert "<- shown once" not in output


@pytest.mark.django_db
def test_seed_demo_new_key_revokes_the_old_one(settings):
    settings.DEBUG = True
    run("seed_demo")
    old = ApiKey.objects.dangerously_unscoped().get()
    run("seed_demo", "--new-key")
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert ApiKey.objects.dangerously_unscoped().usable().count() == 1


@pytest.mark.django_db
def test_seed_demo_refuses_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refuses to run with DEBUG off"):
        run("seed_demo")
    assert not Tenant.objects.exists()


@pytest.mark.django_db
def test_periodic_tasks_follow_the_seed_schedule():
    run("setup_periodic_tasks")
    tasks = {t.name: t for t in PeriodicTask.objects.select_related("crontab")}
    assert set(tasks) == {
        "aggregate_usage",
        "generate_daily_report",
        "cleanup_sessions",
        "sync_billing",
        "webhooks_dispatch_due",
        "dial_due_calls",
        "process_missed_transcripts",
        "knowledge_embed_due",
        "apply_retention",
    }
    crons = {
        name: " ".join(
            [t.crontab.minute, t.crontab.hour, t.crontab.day_of_month, t.crontab.month_of_year, t.crontab.day_of_week]
        )
        for name, t in tasks.items()
    }
    assert crons == {
        "aggregate_usage": "0 * * * *",
        "generate_daily_report": "0 0 * * *",
        "cleanup_sessions": "* * * * *",
        "sync_billing": "0 3 1 * *",
        "webhooks_dispatch_due": "* * * * *",
        "dial_due_calls": "* * * * *",
        "process_missed_transcripts": "*/10 * * * *",
        "knowledge_embed_due": "* * * * *",
        "apply_retention": "30 3 * * *",
    }
    assert tasks["generate_daily_report"].queue == "reports"
    assert tasks["webhooks_dispatch_due"].queue == "webhooks"
    assert all(str(t.crontab.timezone) == "UTC" for t in tasks.values())


@pytest.mark.django_db
def test_periodic_tasks_are_registered_celery_tasks():
    from voiceapp.celery import app

    app.loader.import_default_modules()
    assert {s.task for s in SCHEDULES} <= set(app.tasks)


@pytest.mark.django_db
def test_setup_periodic_tasks_is_idempotent_and_keeps_staff_edits():
    run("setup_periodic_tasks")
    task = PeriodicTask.objects.get(name="aggregate_usage")
    task.enabled = False
    task.crontab = CrontabSchedule.objects.create(minute="30", hour="*")
    task.save()
    run("setup_periodic_tasks")
    assert PeriodicTask.objects.count() == len(SCHEDULES) == 9
    task.refresh_from_db()
    assert (task.enabled, task.crontab.minute) == (False, "30")
    run("setup_periodic_tasks", "--reset")
    task.refresh_from_db()
    assert (task.enabled, task.crontab.minute) == (True, "0")
    assert PeriodicTask.objects.count() == len(SCHEDULES) == 9
