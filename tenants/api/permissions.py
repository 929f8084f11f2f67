"""Read / write / admin permissions from API key scopes or membership roles."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

# Each level includes the ones below it.
SCOPE_LEVELS = {"read": 1, "write": 2, "admin": 3}


def scope_satisfied(granted: set[str], required: str) -> bool:
    return max((SCOPE_LEVELS.get(s, 0) for s in granted), default=0) >= SCOPE_LEVELS[required]


class HasTenantScope(BasePermission):
    """Safe methods need `read`, others `write`, unless the view's `required_scopes` says otherwise."""

    message = "This API key or role does not allow this operation."
    code = "insufficient_permissions"

    def has_permission(self, request, view) -> bool:
        if getattr(request, "tenant", None) is None:
            return False
        default = "read" if request.method in SAFE_METHODS else "write"
        required = getattr(view, "required_scopes", {}).get(request.method, default)
        return scope_satisfied(getattr(request, "granted_scopes", set()), required)
