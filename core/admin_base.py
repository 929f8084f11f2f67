"""Admin base classes and display helpers shared by every app's admin."""

import json
import uuid
from typing import ClassVar

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet, ModelChoiceField
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

# ---------------------------------------------------------------------------------------------------
# Helpers shared by every app's admin
# ---------------------------------------------------------------------------------------------------


def related_count(queryset, fk: str):
    """Count of `queryset` rows whose `fk` points at the outer row, for `.annotate()`.

    A correlated subquery rather than Count() over a join: the changelist keeps one row per object
    without GROUP BY, its COUNT(*) stays cheap, and it works through related_name="+" foreign keys.
    """
    counted = queryset.filter(**{fk: OuterRef("pk")}).order_by().values(fk).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def admin_change_link(model, pk, label) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, label)


def admin_changelist_link(model, label, **filters) -> str:
    """A link to `model`'s changelist (a model class, or "app_label.model_name" for one of a higher app)."""
    app_label, model_name = (
        model.split(".") if isinstance(model, str) else (model._meta.app_label, model._meta.model_name)
    )
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


def pretty_json(value) -> str:
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def format_seconds(seconds) -> str:
    """1:05, or 1:02:05 from an hour on."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def adopt_created(obj, created) -> None:
    """Turn the admin's unsaved `obj` into the row a service created, for the admin's log and redirect."""
    obj.pk = created.pk
    obj.refresh_from_db()


def as_uuid(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


def staff_see_every_tenant(queryset):
    """The admin is the platform's staff: a tenant-owned queryset there deliberately spans every tenant.

    Tenant-owned models refuse an unscoped read (tenants/scoping.py); core imports no domain app, so the
    bypass is recognised by its name rather than by the queryset's class.
    """
    if hasattr(queryset, "dangerously_unscoped"):
        return queryset.dangerously_unscoped()
    return queryset


class StaffSeeEveryTenantMixin:
    """For ModelAdmin and inlines: the changelist, the change form and foreign-key choices cover every tenant."""

    def get_queryset(self, request):
        return staff_see_every_tenant(super().get_queryset(request))

    def get_field_queryset(self, db, db_field, request):
        queryset = super().get_field_queryset(db, db_field, request)
        if queryset is None:
            queryset = db_field.remote_field.model._default_manager.using(db)
        return staff_see_every_tenant(queryset)


class PlatformInlineFormSet(BaseInlineFormSet):
    """An inline formset whose hidden primary-key field looks rows up across tenants, like the inline itself."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        pk_field = form.fields.get(self._pk_field.name)
        if isinstance(pk_field, ModelChoiceField):
            pk_field.queryset = staff_see_every_tenant(pk_field.queryset)


class PlatformModelAdmin(StaffSeeEveryTenantMixin, admin.ModelAdmin):
    """Base of the platform's admins: every tenant's rows, UUID search and fields set only on creation."""

    # Pasting an id from a log or an API response finds the row; children add e.g. "call".
    uuid_search_fields: tuple[str, ...] = ("pk",)
    # Identity fields (tenant, slug): editable on the add form, fixed afterwards.
    create_only_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        pk = as_uuid(search_term)
        if pk is not None:
            # UUID columns can't be searched with icontains on every backend: match them exactly.
            results |= queryset.filter(Q.create([(field, pk) for field in self.uuid_search_fields], connector=Q.OR))
        return results, may_have_duplicates

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # An "Overview" fieldset sums up an existing row (counts, links): there is none yet on the add form.
        return fieldsets if obj is not None else [fieldset for fieldset in fieldsets if fieldset[0] != "Overview"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            # Disabled rather than read-only: the value still comes from the row, never from the POST,
            # but the field stays in the form, so unique constraints led by it (tenant, name) are still
            # validated and a clash is a form error instead of an IntegrityError.
            for name in set(self.create_only_fields) & set(form.base_fields):
                form.base_fields[name].disabled = True
        return form


class TenantOwnedAdmin(PlatformModelAdmin):
    """Admin of a row that belongs to a tenant: the tenant is chosen on creation and fixed afterwards."""

    autocomplete_fields: ClassVar[tuple[str, ...]] = ("tenant",)
    create_only_fields = ("tenant",)


class RecordAdminMixin:
    """Rows the platform writes (audit log, call history, usage): staff view them, never add, edit or delete.

    Subclasses declare `fields` or `fieldsets`; every field shown is read-only.
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.fieldsets) if self.fieldsets else tuple(self.fields or ())


class PlatformTabularInline(StaffSeeEveryTenantMixin, admin.TabularInline):
    """Base of the platform's tabular inlines: child rows of any tenant."""

    formset = PlatformInlineFormSet


class PlatformStackedInline(StaffSeeEveryTenantMixin, admin.StackedInline):
    """Base of the platform's stacked inlines: child rows of any tenant."""

    formset = PlatformInlineFormSet


class ReadOnlyInline(RecordAdminMixin, PlatformTabularInline):
    """An inline listing child records; each row links to its own page."""

    extra = 0
    can_delete = False
    show_change_link = True


class SoftDeleteFilter(admin.SimpleListFilter):
    """Live or soft-deleted rows (`deleted_at`)."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "Live"), ("yes", "Deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted_at__isnull=False)
        return queryset
