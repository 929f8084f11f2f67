"""Tenants, users and their memberships, API keys, the audit log, and the tenant-scoping base."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.db import BaseModel
from tenants.scoping import TenantOwnedQuerySet, dangerously_unscoped_reads


class User(AbstractUser):
    """A person who signs in to the dashboard or the admin; belongs to tenants through memberships."""

    email = models.EmailField("email address", blank=True, db_index=True)


class TenantQuerySet(models.QuerySet):
    def alive(self):
        return self.filter(deleted_at__isnull=True)

    def active(self):
        return self.alive().filter(status=Tenant.Status.ACTIVE)


class Tenant(BaseModel):
    """A business customer. Everything it owns carries a `tenant` foreign key."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=255)
    slug = models.SlugField(
        max_length=100, unique=True, help_text="Stable URL-safe identifier, unique across the platform."
    )
    status = models.CharField(
        max_length=50,
        choices=Status.choices,
        default=Status.ACTIVE,
        db_index=True,
        help_text="A suspended tenant's API keys, calls and dashboard are refused until reactivated.",
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Tenant-wide defaults (JSON object), e.g. provider choices that agents inherit.",
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Soft delete: set when the tenant was closed; its data is kept."
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["active", "suspended"]), name="tenant_status_valid"),
            models.CheckConstraint(condition=~Q(slug=""), name="tenant_slug_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE and self.deleted_at is None


class TenantOwnedModel(BaseModel):
    """Base of every tenant-owned row."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")

    # The default manager refuses an unscoped read (tenants/scoping.py); the base manager Django uses for
    # cascades, forward foreign keys and refresh_from_db stays plain.
    objects = TenantOwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    # Uniqueness spans every tenant (a key prefix, a phone number): the checks ask only whether a clash exists.
    def _perform_unique_checks(self, unique_checks):
        with dangerously_unscoped_reads():
            return super()._perform_unique_checks(unique_checks)

    def validate_constraints(self, exclude=None):
        with dangerously_unscoped_reads():
            return super().validate_constraints(exclude=exclude)


class Membership(TenantOwnedModel):
    """A user's role in one tenant."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=20,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="Owner and admin manage keys, members and billing; member edits agents and calls; viewer only reads.",
    )

    class Meta:
        ordering = ["tenant__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_tenant_user"),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "member", "viewer"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} of {self.tenant}"


class ApiKeyQuerySet(TenantOwnedQuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class ApiKey(TenantOwnedModel):
    """A tenant's API key. Only a lookup prefix and the SHA-256 hash of the secret are stored."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        ADMIN = "admin", "Admin"

    name = models.CharField(max_length=100, help_text="What the key is for, e.g. 'CRM integration'.")
    prefix = models.CharField(
        max_length=32,
        unique=True,
        help_text="The key's visible start (vk_live_xxxxxxxx); identifies it in logs and lists.",
    )
    key_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the full key; the key itself is never stored."
    )
    scopes = models.JSONField(
        default=list, blank=True, help_text='Permissions granted: any of "read", "write", "admin".'
    )
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Set when revoked; a revoked key is refused.")

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "revoked_at"], name="apikey_tenant_revoked_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(prefix__startswith="vk_"), name="apikey_prefix_format"),
            models.CheckConstraint(condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="apikey_hash_is_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class AuditLog(TenantOwnedModel):
    """An append-only record of a write: who did what to which object, from which request."""

    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(
        max_length=255, blank=True, help_text="Who acted, kept even if the user or key is later deleted."
    )
    action = models.CharField(max_length=100, help_text="Dotted verb, e.g. 'agent.update' or 'tenant.suspend'.")
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Changed fields; secrets are never recorded.")
    request_id = models.CharField(max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="auditlog_tenant_created_idx"),
            models.Index(fields=["tenant", "object_type", "object_id"], name="auditlog_tenant_object_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label or 'system'}"


class IdempotencyKey(TenantOwnedModel):
    """A stored POST response, replayed for a retry with the same Idempotency-Key (Stripe's semantics)."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETE = "complete", "Complete"

    key = models.CharField(max_length=255, help_text="The client's Idempotency-Key header.")
    request_method = models.CharField(max_length=10)
    request_path = models.CharField(max_length=512)
    request_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of method, path and body: the same key with another body is refused."
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True, help_text="After this the key may be used again (24 h).")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="idempotency_unique_tenant_key"),
            models.CheckConstraint(
                condition=~Q(state="complete") | Q(response_status__isnull=False),
                name="idempotency_complete_has_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_method} {self.request_path} [{self.key}]"
