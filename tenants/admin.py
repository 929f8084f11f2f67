"""Staff admin for users, tenants, memberships, API keys and the audit log."""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from core.admin_base import (
    PlatformInlineFormSet,
    PlatformModelAdmin,
    PlatformTabularInline,
    ReadOnlyInline,
    RecordAdminMixin,
    SoftDeleteFilter,
    TenantOwnedAdmin,
    admin_changelist_link,
    adopt_created,
    pretty_json,
    related_count,
)
from tenants.models import ApiKey, AuditLog, IdempotencyKey, Membership, Tenant, User
from tenants.services import api_key_create, api_key_revoke, tenant_create, tenant_set_status

# ---------------------------------------------------------------------------------------------------
# Users and memberships
# ---------------------------------------------------------------------------------------------------


class UserMembershipInline(PlatformTabularInline):
    model = Membership
    fk_name = "user"
    fields = ("tenant", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("tenant",)
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = (UserMembershipInline,)
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "tenant_roles")
    list_filter = (*DjangoUserAdmin.list_filter, "memberships__role")
    ordering = ("username",)

    def get_queryset(self, request):
        memberships = Prefetch("memberships", queryset=Membership.objects.select_related("tenant"))
        return super().get_queryset(request).prefetch_related(memberships)

    @admin.display(description="Tenants")
    def tenant_roles(self, obj):
        return ", ".join(f"{m.tenant} ({m.role})" for m in obj.memberships.all()) or "—"


@admin.register(Membership)
class MembershipAdmin(TenantOwnedAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "tenant__name", "tenant__slug")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("tenant", "user")
    create_only_fields = ("tenant", "user")
    readonly_fields = ("created_at", "updated_at")


# ---------------------------------------------------------------------------------------------------
# Tenants
# ---------------------------------------------------------------------------------------------------


class TenantChildFormSet(PlatformInlineFormSet):
    """Tenant foreign keys have no reverse name (related_name="+"): name the inline's form prefix after the model."""

    @classmethod
    def get_default_prefix(cls):
        return str(cls.model._meta.verbose_name_plural).replace(" ", "_").lower()


class TenantMembershipInline(PlatformTabularInline):
    model = Membership
    fk_name = "tenant"
    formset = TenantChildFormSet
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 0


class TenantApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fk_name = "tenant"
    formset = TenantChildFormSet
    fields = ("name", "prefix", "scope_list", "key_status", "last_used_at", "expires_at", "created_at")
    verbose_name_plural = "API keys (revoke them from the API key list)"

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes) or "—"

    @admin.display(description="Status")
    def key_status(self, obj):
        return api_key_status(obj)


# Other apps' tenant-owned records, registered by their own admin modules (`register_tenant_records`), so
# this module imports no app above tenants: linked from the tenant's page, some counted in the list.
_TENANT_RECORDS: list[tuple[int, type, str]] = []
_TENANT_COUNTS: dict[str, tuple[str, object]] = {}


def register_tenant_records(model, label: str, *, order: int = 50, counted=None) -> None:
    """Link `model`'s rows from each tenant's admin page; `counted` (a queryset factory) adds a count column."""
    _TENANT_RECORDS.append((order, model, label))
    if counted is not None:
        _TENANT_COUNTS[f"{model._meta.model_name}_count"] = (label, counted)


register_tenant_records(ApiKey, "API keys", order=40)
register_tenant_records(AuditLog, "Audit log", order=90)


@admin.register(Tenant)
class TenantAdmin(PlatformModelAdmin):
    list_display = ("name", "slug", "status", "plan", "member_count", "created_at")
    list_filter = ("status", SoftDeleteFilter, "subscription__plan")
    search_fields = ("name", "slug")
    list_select_related = ("subscription__plan",)
    ordering = ("name",)
    prepopulated_fields = {"slug": ("name",)}
    create_only_fields = ("slug",)
    readonly_fields = ("status", "plan", "member_count", "related_records", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "status", "deleted_at")}),
        (
            "Settings (JSON)",
            {"fields": ("settings",), "description": "Tenant-wide defaults that the tenant's agents inherit."},
        ),
        (
            "Overview",
            {"fields": ("plan", "member_count", "related_records", "created_at", "updated_at")},
        ),
    )
    inlines = (TenantMembershipInline, TenantApiKeyInline)
    actions = ("suspend_tenants", "reactivate_tenants")

    def get_queryset(self, request):
        counts = {name: related_count(counted(), "tenant") for name, (_label, counted) in _TENANT_COUNTS.items()}
        return (
            super()
            .get_queryset(request)
            .annotate(member_count=related_count(Membership.objects.dangerously_unscoped(), "tenant"), **counts)
        )

    def get_list_display(self, request):
        name, slug, status, plan, *rest = super().get_list_display(request)
        return (name, slug, status, plan, *(_count_column(n, label) for n, (label, _) in _TENANT_COUNTS.items()), *rest)

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # what tenant_create takes
            return ((None, {"fields": ("name", "slug", "settings")}),)
        return super().get_fieldsets(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # tenants are closed by setting deleted_at; their calls and billing are kept

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new tenant goes through the service so its creation is audited like any other.
        created = tenant_create(name=obj.name, slug=obj.slug, settings=obj.settings, actor_user=request.user)
        adopt_created(obj, created)

    @admin.display(description="Plan", ordering="subscription__plan__name")
    def plan(self, obj):
        subscription = getattr(obj, "subscription", None)
        return subscription.plan if subscription else "— (default plan)"

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, obj):
        return obj.member_count

    @admin.display(description="Related records")
    def related_records(self, obj):
        records = sorted(_TENANT_RECORDS, key=lambda record: record[0])
        links = [admin_changelist_link(model, label, tenant__id__exact=obj.pk) for _, model, label in records]
        return format_html_join(" · ", "{}", ((link,) for link in links))

    @admin.action(description="Suspend selected tenants", permissions=["change"])
    def suspend_tenants(self, request, queryset):
        changed = self._set_status(request, queryset, Tenant.Status.SUSPENDED)
        message = ngettext("%(n)d tenant suspended.", "%(n)d tenants suspended.", changed) % {"n": changed}
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants", permissions=["change"])
    def reactivate_tenants(self, request, queryset):
        changed = self._set_status(request, queryset, Tenant.Status.ACTIVE)
        message = ngettext("%(n)d tenant reactivated.", "%(n)d tenants reactivated.", changed) % {"n": changed}
        self.message_user(request, message, messages.SUCCESS)

    def _set_status(self, request, queryset, status: str) -> int:
        """Set the status through the (audited) service; return how many tenants actually changed."""
        changed = 0
        for tenant in queryset:
            if tenant.status != status:
                changed += 1
            tenant_set_status(tenant=tenant, status=status, actor_user=request.user)
        return changed


def _count_column(name: str, label: str):
    @admin.display(description=label, ordering=name)
    def column(obj):
        return getattr(obj, name)

    column.__name__ = name
    return column


# ---------------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------------


def api_key_status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.usable(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiKeyCreateForm(forms.ModelForm):
    """The add form: what `api_key_create` needs. Prefix, hash and secret are made by the service."""

    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, initial=["read", "write"], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "scopes", "expires_at")

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The key would be expired already: pick a time in the future.")
        return expires_at


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    list_display = ("name", "tenant", "prefix", "scope_list", "key_status", "last_used_at", "expires_at", "created_at")
    list_filter = (ApiKeyStatusFilter,)
    search_fields = ("name", "prefix", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("-created_at",)
    exclude = ("key_hash",)  # never shown, not even read-only
    actions = ("revoke_keys",)
    add_form = ApiKeyCreateForm
    add_fieldsets = (
        (
            None,
            {
                "fields": ("tenant", "name", "scopes", "expires_at"),
                "description": "The key's secret is shown once, right after saving; only its SHA-256 hash is kept.",
            },
        ),
    )
    fieldsets = (
        (
            None,
            {
                "fields": ("tenant", "name", "prefix", "scope_list", "key_status"),
                "description": "The secret was shown once, when the key was created, and cannot be recovered: "
                "if it is lost, revoke the key and issue a new one.",
            },
        ),
        ("Lifecycle", {"fields": ("created_by", "created_at", "last_used_at", "expires_at", "revoked_at")}),
    )
    readonly_fields = (
        "prefix",
        "scope_list",
        "key_status",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # The add form is the service's input only; everything but the name is fixed once issued.
        return super().get_readonly_fields(request, obj) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key stays in the tenant's key list and audit trail

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        issued = api_key_create(
            tenant=data["tenant"],
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data["expires_at"],
            created_by=request.user,
        )
        adopt_created(obj, issued.api_key)
        messages.success(request, f"Copy this key now, it will not be shown again: {issued.secret}")

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes) or "—"

    @admin.display(description="Status")
    def key_status(self, obj):
        return api_key_status(obj)

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        revoked = 0
        for key in queryset:
            if key.revoked_at is None:
                revoked += 1
            api_key_revoke(api_key=key, actor_user=request.user)
        message = ngettext("%(n)d API key revoked.", "%(n)d API keys revoked.", revoked) % {"n": revoked}
        self.message_user(request, message, messages.SUCCESS)


# ---------------------------------------------------------------------------------------------------
# Audit log
# ---------------------------------------------------------------------------------------------------


class AuditActionFilter(admin.SimpleListFilter):
    """What was acted on: the action's resource (`agent.update` -> agent). The choices are a fixed list,
    not a SELECT DISTINCT over the whole log on every page; the search box finds one exact action."""

    title = "action"
    parameter_name = "resource"
    RESOURCES = (
        ("tenant", "Tenants"),
        ("membership", "Members and roles"),
        ("api_key", "API keys"),
        ("agent", "Agents"),
        ("knowledge", "Knowledge documents"),
        ("voice", "Voices"),
        ("number", "Phone numbers"),
        ("call", "Calls"),
        ("webhook_endpoint", "Webhook endpoints"),
        ("webhook_delivery", "Webhook deliveries"),
        ("credential", "Provider credentials"),
        ("backend_service", "Backend services"),
    )

    def lookups(self, request, model_admin):
        return self.RESOURCES

    def queryset(self, request, queryset):
        return queryset.filter(action__startswith=f"{self.value()}.") if self.value() else queryset


class AuditActorFilter(admin.SimpleListFilter):
    """Who acted: a person (dashboard or admin), an API key, or the platform itself (tasks, the media worker)."""

    title = "actor type"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        return (("user", "A user"), ("api_key", "An API key"), ("system", "The platform"))

    def queryset(self, request, queryset):
        if self.value() == "user":
            return queryset.filter(actor_user__isnull=False)
        if self.value() == "api_key":
            return queryset.filter(actor_api_key__isnull=False)
        if self.value() == "system":
            return queryset.filter(actor_user__isnull=True, actor_api_key__isnull=True)
        return queryset


@admin.register(AuditLog)
class AuditLogAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Append-only: rows are written by services inside their transaction, never from here."""

    list_display = ("created_at", "tenant", "action", "actor_label", "object_type", "object_id", "request")
    # Tenant: every tenant (a small table), not a DISTINCT over the log; action and actor: fixed lists.
    list_filter = (
        ("created_at", admin.DateFieldListFilter),
        AuditActionFilter,
        AuditActorFilter,
        ("tenant", admin.RelatedFieldListFilter),
    )
    search_fields = ("action", "actor_label", "object_id", "request_id", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False  # a filtered page skips a second COUNT(*) over the whole log
    fields = (
        "created_at",
        "tenant",
        "action",
        "actor_label",
        "actor_user",
        "actor_api_key",
        "object_type",
        "object_id",
        "changes_pretty",
        "request_id",
        "ip_address",
    )

    @admin.display(description="Changes")
    def changes_pretty(self, obj):
        return pretty_json(obj.changes)

    @admin.display(description="Request", ordering="request_id")
    def request(self, obj):
        """The request id shortened to its first 8 characters (the whole id on hover), linking to every
        row of that request; the same id is in the logs (`request_id`) and the X-Request-ID header."""
        if not obj.request_id:
            return "—"
        short = obj.request_id if len(obj.request_id) <= 12 else f"{obj.request_id[:8]}…"
        link = "?" + urlencode({"request_id": obj.request_id})
        return format_html('<a href="{}" title="{}"><code>{}</code></a>', link, obj.request_id, short)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(RecordAdminMixin, TenantOwnedAdmin):
    """Stored POST outcomes, replayed to retries. The stored body is not shown: it may hold an issued secret."""

    list_display = ("created_at", "tenant", "key", "request_method", "request_path", "state", "response_status")
    list_filter = ("state", "request_method")
    search_fields = ("key", "request_path", "tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    ordering = ("-created_at",)
    show_full_result_count = False
    fields = (
        "created_at",
        "tenant",
        "key",
        "request_method",
        "request_path",
        "request_fingerprint",
        "state",
        "response_status",
        "expires_at",
    )

    def has_delete_permission(self, request, obj=None):
        # Deleting a key stuck "in progress" (its request died) lets the client retry before it expires.
        return super(RecordAdminMixin, self).has_delete_permission(request, obj)
