"""Structured JSON logs, one object per line, carrying the request, tenant and call ids of the current context.

The fields are listed in docs/operations.md#observability.
"""

import logging
import socket
from contextvars import ContextVar

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from core.redaction import mask_tokens

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
tenant_id_var: ContextVar[str | None] = ContextVar("tenant_id", default=None)
call_id_var: ContextVar[str | None] = ContextVar("call_id", default=None)

_CONTEXT = {"request_id": request_id_var, "tenant_id": tenant_id_var, "call_id": call_id_var}
_INSTANCE = socket.gethostname()


class ContextFilter(logging.Filter):
    """Copy the context ids onto every record (explicit `extra=` values win); mask tokens in the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "eyJ" in message:  # a token quoted by a provider or a library: masked before any handler sees it
            record.msg, record.args = mask_tokens(message), ()
        for name, var in _CONTEXT.items():
            if getattr(record, name, None) is None:
                value = var.get()
                setattr(record, name, str(value) if value is not None else None)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line with the documented field names (docs/operations.md#observability)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", "timestamp")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["service"] = getattr(settings, "SERVICE_NAME", "voiceapp")
        if isinstance(log_record.get("exc_info"), str):
            log_record["exc_info"] = mask_tokens(log_record["exc_info"])
        log_record["instance"] = _INSTANCE
