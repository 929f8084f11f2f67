"""Data retention (docs/billing.md#retention), applied daily by `voiceapp.tasks.apply_retention`.

The policy: call records and transcripts after 7 years, audio recordings after 1 year, usage records after
7 years, audit logs after 7 years; session state lives only in Redis with a TTL. Hot, warm and archive tiers
are storage decisions outside the database. Finished webhook deliveries are kept 90 days. Every period is a
setting (RETENTION_DAYS); rows go in batches, files with them.

Each app registers the rules for its own tables at start-up (`<app>/retention.py`, from its AppConfig), so
this module knows no domain model. Rules run in `order`: a call's recordings before the call (its rows go
with it, its stored files would not).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)
BATCH = 1000


@dataclass(frozen=True)
class Rule:
    """`select(now, cutoff)` returns the rows (across tenants) to delete; `cutoff(kind)` is now - RETENTION_DAYS[kind]."""

    name: str
    select: Callable[[datetime, Callable[[str], datetime]], QuerySet]
    files: str | None = None  # a FileField whose stored file goes with the row
    order: int = 100


_rules: dict[str, Rule] = {}


def register(rule: Rule) -> None:
    _rules[rule.name] = rule


def rules() -> list[Rule]:
    return sorted(_rules.values(), key=lambda rule: (rule.order, rule.name))


def purge(queryset, *, files: str | None = None) -> int:
    """Delete the rows of `queryset` in batches, with the stored file in field `files`."""
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:BATCH]):
        batch = queryset.model._base_manager.filter(pk__in=ids)
        if files:
            for row in batch:
                getattr(row, files).delete(save=False)
        batch.delete()
        deleted += len(ids)
    return deleted


def retention_apply(*, now=None) -> dict[str, int]:
    """Delete what is older than its retention period; returns the rows deleted per rule."""
    now = now or timezone.now()

    def cutoff(kind: str) -> datetime:
        return now - timedelta(days=settings.RETENTION_DAYS[kind])

    deleted = {rule.name: purge(rule.select(now, cutoff), files=rule.files) for rule in rules()}
    logger.info("retention applied: %s", deleted)
    return deleted
