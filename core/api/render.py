"""Plain values as the API renders them (what DRF's fields would produce), for hot read paths."""

import uuid
from datetime import datetime


def api_value(value):
    """ISO-8601 times with `Z` for UTC and UUIDs as strings, exactly like DRF's DateTimeField/UUIDField."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def api_values(row: dict) -> dict:
    return {key: api_value(value) for key, value in row.items()}
