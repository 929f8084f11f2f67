"""Tenant scoping as a guard: a tenant-owned queryset refuses to be read until it is scoped.

A queryset of a tenant-owned model is *scoped* when

- it went through `.for_tenant(tenant)`, or is filtered on the tenant (`tenant=`, `tenant_id=`, `tenant__in=`,
  `tenant__pk=`, `tenant__slug=`, also inside AND-ed `Q` objects; `exclude()` and `tenant__isnull` pin nothing);
- it comes from a related manager of a row already read (`agent.calls`, `call.turns`, prefetch_related):
  Django filters those on the foreign key, and the parent row was read through a scoped query;
- it is `.none()` (no row can leak); or
- `.dangerously_unscoped()` was called: the deliberate cross-tenant read (sweeps, the outbox, retention, the
  admin, routing an inbound call by its dialled number), named so it stands out at the call site.

Reading one that is not (iterating it, len, bool, count, exists, get, first, aggregate, update, delete,
iterator...) raises `UnscopedQuery`, a programming error. Building one is free: a queryset used as a subquery
(`filter(x__in=qs)`, `Exists(qs)`, `Subquery(qs)`) is never evaluated on its own, the outer query is checked.
Creating rows (create, bulk_create, save) is not a read. The base manager (`_base_manager`: cascades, forward
foreign keys, refresh_from_db) stays a plain manager. `tests/platform/test_tenant_scoping.py` walks the code
and lists every place allowed to bypass.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.db.models import Q
from django.db.models.constants import LOOKUP_SEP

# Lookups on the tenant that pin it to given tenants; anything else after `tenant__` (e.g. `tenant__status`)
# selects every tenant that matches, which is not a scope.
_TENANT_IDENTITY = {(), ("pk",), ("id",), ("slug",)}
_PINNING_LOOKUPS = {"exact", "in"}

# Set only by dangerously_unscoped_reads(), for the framework's own checks that must span tenants.
_unscoped_reads_allowed: ContextVar[bool] = ContextVar("unscoped_reads_allowed", default=False)


class UnscopedQuery(RuntimeError):
    """A tenant-owned queryset was read without a tenant scope: a bug in the code, never the user's error."""


def lookup_pins_tenant(key: str, value) -> bool:
    """Whether the filter `key=value` restricts rows to given tenants."""
    if value is None:
        return False
    field, *rest = key.split(LOOKUP_SEP)
    if rest and rest[-1] in _PINNING_LOOKUPS:
        rest = rest[:-1]
    if field == "tenant":
        return tuple(rest) in _TENANT_IDENTITY
    return field == "tenant_id" and not rest


def q_pins_tenant(q: Q) -> bool:
    """Whether a Q restricts rows to given tenants: one AND-ed term does, or every OR-ed branch does."""
    if q.negated or not q.children:
        return False
    pinned = [
        q_pins_tenant(child)
        if isinstance(child, Q)
        else isinstance(child, tuple) and len(child) == 2 and lookup_pins_tenant(*child)
        for child in q.children
    ]
    return any(pinned) if q.connector == Q.AND else all(pinned)


@contextmanager
def dangerously_unscoped_reads():
    """Lets the framework's own uniqueness checks read across tenants (they only learn whether a clash exists)."""
    token = _unscoped_reads_allowed.set(True)
    try:
        yield
    finally:
        _unscoped_reads_allowed.reset(token)


class TenantOwnedQuerySet(models.QuerySet):
    """Tenant-owned rows are read through `for_tenant`; `dangerously_unscoped` marks a deliberate cross-tenant read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Why this queryset may be read ("tenant", "related", "none", "rows_in_hand", "dangerously_unscoped");
        # None: it may not be.
        self._tenant_scope: str | None = None

    # -- what scopes a queryset -------------------------------------------------------------------------

    def for_tenant(self, tenant):
        if tenant is None:
            raise ValueError(
                "for_tenant() needs a tenant; use dangerously_unscoped() for a deliberate cross-tenant query"
            )
        return self.filter(tenant=tenant)

    def dangerously_unscoped(self):
        """Every tenant's rows, on purpose. Each call site is listed in tests/platform/test_tenant_scoping.py."""
        clone = self._chain()
        clone._tenant_scope = "dangerously_unscoped"
        return clone

    def _filter_or_exclude(self, negate, args, kwargs):
        clone = super()._filter_or_exclude(negate, args, kwargs)
        if clone._tenant_scope is None and not negate and q_pins_tenant(Q(*args, **kwargs)):
            clone._tenant_scope = "tenant"
        return clone

    def complex_filter(self, filter_obj):
        clone = super().complex_filter(filter_obj)
        if clone._tenant_scope is None and isinstance(filter_obj, Q) and q_pins_tenant(filter_obj):
            clone._tenant_scope = "tenant"
        return clone

    def none(self):
        clone = super().none()
        clone._tenant_scope = clone._tenant_scope or "none"
        return clone

    def _add_hints(self, **hints):
        # Related managers and prefetch_related hint the parent instance after filtering on its foreign key.
        super()._add_hints(**hints)
        if hints.get("instance") is not None and self._tenant_scope is None:
            self._tenant_scope = "related"

    def _clone(self):
        clone = super()._clone()
        clone._tenant_scope = self._tenant_scope
        return clone

    def _combined(self, other, combined, both_needed: bool):
        if combined is self or combined is other or not isinstance(combined, TenantOwnedQuerySet):
            return combined
        left, right = self._tenant_scope, getattr(other, "_tenant_scope", None)
        scoped = (left and right) if both_needed else (left or right)
        combined._tenant_scope = (left or right) if scoped else None
        return combined

    def __or__(self, other):
        return self._combined(other, super().__or__(other), both_needed=True)

    def __xor__(self, other):
        return self._combined(other, super().__xor__(other), both_needed=True)

    def __and__(self, other):
        return self._combined(other, super().__and__(other), both_needed=False)

    def _combinator_query(self, combinator, *other_qs, all=False):
        clone = super()._combinator_query(combinator, *other_qs, all=all)
        if any(isinstance(qs, TenantOwnedQuerySet) and qs._tenant_scope is None for qs in other_qs):
            clone._tenant_scope = None
        return clone

    # -- the guard --------------------------------------------------------------------------------------

    @property
    def is_tenant_scoped(self) -> bool:
        return self._tenant_scope is not None

    def _check_tenant_scope(self):
        if self._tenant_scope is None and not _unscoped_reads_allowed.get():
            raise UnscopedQuery(
                f"Unscoped read of {self.model._meta.label}: scope it with .for_tenant(tenant) or "
                ".filter(tenant=...), or mark a deliberate cross-tenant read with .dangerously_unscoped()"
            )

    def _fetch_all(self):
        if self._result_cache is None:
            self._check_tenant_scope()
        super()._fetch_all()

    def iterator(self, chunk_size=None):
        self._check_tenant_scope()
        return super().iterator(chunk_size)

    def aiterator(self, chunk_size=2000):
        self._check_tenant_scope()
        return super().aiterator(chunk_size)

    def count(self):
        if self._result_cache is None:
            self._check_tenant_scope()
        return super().count()

    def exists(self):
        if self._result_cache is None:
            self._check_tenant_scope()
        return super().exists()

    def aggregate(self, *args, **kwargs):
        self._check_tenant_scope()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        self._check_tenant_scope()
        return super().update(**kwargs)

    def delete(self):
        self._check_tenant_scope()
        return super().delete()

    def _raw_delete(self, using):
        self._check_tenant_scope()
        return super()._raw_delete(using)

    def explain(self, *, format=None, **options):
        self._check_tenant_scope()
        return super().explain(format=format, **options)

    def bulk_update(self, objs, fields, batch_size=None):
        # Like save(): it writes rows the caller already holds, by primary key.
        clone = self._chain()
        clone._tenant_scope = clone._tenant_scope or "rows_in_hand"
        return super(TenantOwnedQuerySet, clone).bulk_update(objs, fields, batch_size=batch_size)

    def __repr__(self):
        if self._tenant_scope is None and self._result_cache is None:
            return f"<{type(self).__name__} of {self.model._meta.label}, not scoped to a tenant (not evaluated)>"
        return super().__repr__()
