"""Helpers shared by the constraint tests of every app."""

import pytest
from django.db import IntegrityError, connection, transaction


def unique_violation(name: str):
    """pytest.raises for a unique constraint: PostgreSQL names the constraint, SQLite its columns."""
    return pytest.raises(
        IntegrityError, match=name if connection.vendor == "postgresql" else "UNIQUE constraint failed"
    )


def assert_check_constraint(tenant, constraint, make, bad, good) -> None:
    """Writing `bad` to a valid row violates `constraint` and changes nothing; writing `good` succeeds."""
    obj = make(tenant)
    rows = type(obj)._base_manager.filter(pk=obj.pk)
    before = rows.values(*bad).get()

    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        rows.update(**bad)

    assert rows.values(*bad).get() == before
    assert rows.update(**good) == 1
    assert rows.values(*good).get() == good
