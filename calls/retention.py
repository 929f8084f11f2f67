"""What retention deletes of calls (core.retention): recordings after RETENTION_DAYS["recordings"] (or their own
expiry), calls with their turns, events and tool calls after RETENTION_DAYS["calls"]."""

from django.db.models import Q

from calls.models import Call, Recording
from core.retention import Rule, register


def _recordings(now, cutoff):
    old = Q(expires_at__lt=now) | Q(expires_at__isnull=True, created_at__lt=cutoff("recordings"))
    return Recording.objects.dangerously_unscoped().filter(old | Q(call__created_at__lt=cutoff("calls")))


def install() -> None:
    register(Rule("recordings", _recordings, files="file", order=10))  # before their calls
    register(
        Rule(
            "calls",
            lambda now, cutoff: Call.objects.dangerously_unscoped().filter(created_at__lt=cutoff("calls")),
            order=20,
        )
    )
