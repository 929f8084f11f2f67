"""What retention deletes of tenants' records (core.retention): audit logs, expired idempotency keys."""

from core.retention import Rule, register
from tenants.models import AuditLog, IdempotencyKey


def install() -> None:
    register(
        Rule("audit_logs", lambda now, c: AuditLog.objects.dangerously_unscoped().filter(created_at__lt=c("audit")))
    )
    register(
        Rule(
            "idempotency_keys", lambda now, c: IdempotencyKey.objects.dangerously_unscoped().filter(expires_at__lt=now)
        )
    )
