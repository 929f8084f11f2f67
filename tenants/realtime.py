"""Who is on the other end of a websocket: the same principals as the REST API, tenant-scoped.

A program sends `X-API-Key` in the handshake; a signed-in dashboard user is known by the session
cookie (Channels' AuthMiddlewareStack) and acts in the tenant named by the `tenant` query parameter
(slug or id), else the one chosen in the session, else their only tenant. A tenant the caller is
not a member of is refused exactly like one that does not exist.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs

from core.errors import ApplicationError
from tenants.api.authentication import ROLE_SCOPE, SESSION_TENANT_KEY, _tenant_lookup
from tenants.models import Membership, Tenant
from tenants.services import ApiKeyRefused, api_key_authenticate


class SocketRefused(ApplicationError):
    status_code = 401
    code = "not_authenticated"


@dataclass(frozen=True)
class SocketPrincipal:
    tenant: Tenant
    scopes: frozenset[str]
    user_id: int | None = None
    api_key_id: str | None = None

    def allows(self, scope: str) -> bool:
        order = ["read", "write", "admin"]
        return any(order.index(granted) >= order.index(scope) for granted in self.scopes if granted in order)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def socket_principal(scope: dict) -> SocketPrincipal:
    """The tenant and scopes of a websocket connection (sync: run it through database_sync_to_async)."""
    raw_key = _header(scope, b"x-api-key")
    if raw_key:
        try:
            key = api_key_authenticate(raw_key=raw_key.strip())
        except ApiKeyRefused as exc:
            raise SocketRefused(exc.message, code=exc.code) from exc
        return SocketPrincipal(tenant=key.tenant, scopes=frozenset(key.scopes), api_key_id=str(key.pk))
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        raise SocketRefused("Sign in, or send an X-API-Key header.")
    memberships = (
        Membership.objects.dangerously_unscoped()
        .select_related("tenant")
        .filter(user=user, tenant__deleted_at__isnull=True)
    )
    query = parse_qs((scope.get("query_string") or b"").decode())
    session = scope.get("session")
    wanted = (query.get("tenant") or [None])[0] or (session.get(SESSION_TENANT_KEY) if session else None)
    if wanted:
        memberships = memberships.filter(**_tenant_lookup(str(wanted)))
    found = list(memberships[:2])
    if len(found) != 1:
        code = "tenant_required" if found else "tenant_not_found"
        raise SocketRefused("Name one of your tenants in the `tenant` query parameter.", code=code)
    membership = found[0]
    if not membership.tenant.is_active:
        raise SocketRefused("This tenant is suspended.", code="tenant_suspended")
    return SocketPrincipal(tenant=membership.tenant, scopes=frozenset({ROLE_SCOPE[membership.role]}), user_id=user.pk)


# Sockets a carrier opens (no Origin, no cookie): each message stream proves itself with a signed token.
TOKEN_AUTHENTICATED_PATHS = frozenset({"/ws/v1/carriers/twilio/stream"})


class OriginOrApiKeyValidator:
    """The websocket origin check, where it protects something.

    An Origin check stops a page on another site from opening a socket with the user's session cookie.
    A connection that presents `X-API-Key` is authenticated by that key alone (`socket_principal` never
    falls back to the session when a key is sent), and no web page can add that header to a websocket
    handshake; such a program needs no Origin (plain websocket clients send none). Everything else goes
    through Channels' AllowedHostsOriginValidator: no Origin, or one outside ALLOWED_HOSTS, is a 403 (except
    a carrier's media socket, which uses no session and is authenticated by the token its stream carries).
    """

    def __init__(self, application):
        from channels.security.websocket import AllowedHostsOriginValidator

        self.application = application
        self.checked = AllowedHostsOriginValidator(application)

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "websocket" and _header(scope, b"x-api-key"):
            return await self.application(scope, receive, send)
        if scope.get("type") == "websocket" and scope.get("path") in TOKEN_AUTHENTICATED_PATHS:
            return await self.application(scope, receive, send)
        return await self.checked(scope, receive, send)
