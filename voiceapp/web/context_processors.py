"""Template context every dashboard page needs: the tenant switcher, the role, the navigation."""

from django.urls import reverse

from tenants.api.permissions import scope_satisfied

# (section, label, url name): the top navigation, in order.
NAVIGATION = (
    ("overview", "Overview", "web:overview"),
    ("agents", "Agents", "agents:list"),
    ("numbers", "Numbers", "telephony:numbers"),
    ("voices", "Voices", "agents:voices"),
    ("calls", "Calls", "calls:list"),
    ("live", "Live", "calls:live"),
    ("usage", "Usage", "billing:usage"),
    ("developers", "Developers", "integrations:developers"),
    ("members", "Members", "web:members"),
)


def dashboard(request) -> dict:
    scopes = getattr(request, "granted_scopes", set())
    return {
        "navigation": _links(),
        "active_tenant": getattr(request, "tenant", None),
        "active_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
        "can_write": scope_satisfied(scopes, "write") if scopes else False,
        "can_admin": scope_satisfied(scopes, "admin") if scopes else False,
    }


def _links() -> list[tuple[str, str, str]]:
    return [(section, label, reverse(url_name)) for section, label, url_name in NAVIGATION]
