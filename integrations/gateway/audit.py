"""One OutboundRequest row and one structured log line per gateway call, both redacted.

The row is written through the ORM in a worker thread (sync_to_async), never on the event loop. A
failed write is logged and swallowed: losing an audit row must not fail the call it describes.
"""

import logging
from dataclasses import dataclass, field
from uuid import UUID

from asgiref.sync import sync_to_async

logger = logging.getLogger("integrations.gateway")

LEVELS = {"ok": logging.INFO, "http_error": logging.WARNING}


@dataclass
class AuditRecord:
    """What the gateway knows about one call when it ends; every text in it is already redacted."""

    tenant_id: str | UUID
    service: str
    method: str
    url: str
    call_session_id: str
    outcome: str
    duration_ms: int
    retry_count: int = 0
    status_code: int | None = None
    error: str = ""
    request_headers: dict | None = None
    request_body: object = None
    response_body: object = None
    extra: dict = field(default_factory=dict)


def log_call(record: AuditRecord) -> None:
    """The log entry: service, method, call_session_id, duration_ms, status, retry_count."""
    # `backend_service`, not `service`: the platform's JSON formatter writes its own process name there.
    logger.log(
        LEVELS.get(record.outcome, logging.WARNING),
        "outbound %s %s: %s",
        record.method,
        record.service,
        record.outcome.upper(),
        extra={
            "backend_service": record.service,
            "method": record.method,
            "call_session_id": record.call_session_id,
            "duration_ms": record.duration_ms,
            "status": record.outcome.upper(),
            "status_code": record.status_code,
            "retry_count": record.retry_count,
            "url": record.url,
            "error": record.error,
            "tenant_id": str(record.tenant_id),
        },
    )


def write_row(record: AuditRecord) -> None:
    """Insert the OutboundRequest row (sync; the gateway calls it through sync_to_async)."""
    from integrations.models import OutboundRequest  # the gateway imports without Django's apps ready

    try:
        OutboundRequest.objects.create(
            tenant_id=record.tenant_id,
            service=record.service[:100],
            method=record.method[:10],
            url=record.url[:2000],
            call_session_id=record.call_session_id[:64],
            outcome=record.outcome,
            status_code=record.status_code,
            duration_ms=max(0, record.duration_ms),
            retry_count=min(record.retry_count, 32767),
            error=record.error,
            request_headers=record.request_headers,
            request_body=record.request_body,
            response_body=record.response_body,
        )
    except Exception:  # the audit must never fail the call: record that it was lost, and go on
        logger.exception("audit row of an outbound %s call could not be written", record.service)


write_row_async = sync_to_async(write_row, thread_sensitive=True)
