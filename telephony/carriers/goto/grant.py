"""GoTo Connect's OAuth grant: a tenant admin's consent, the account and line it gives, and its storage.

GoTo's OAuth server grants only authorization code + refresh token (its metadata lists no client
credentials), so each tenant connects once through the browser (docs/telephony.md#connecting-goto):

1. `consent_url()` remembers a single-use `state` in the session (bound to the tenant and to who started
   it, dashboard or admin) and returns GoTo's authorize URL with our client id, callback and scopes;
2. GoTo sends the browser back to the callback with `code` and `state`; `state_take()` checks the state
   (signed, same session, same tenant, at most STATE_SECONDS old, used once);
3. `exchange_code()` trades the code at the token endpoint (form-encoded, HTTP Basic client auth),
   `read_line()` reads the account key (GET /admin/rest/v1/me -> accounts[].key) and the line
   (GET /users/v1/lines -> id, number, organization.id), and `connection_save()` stores the grant with
   its tokens sealed by the credential vault.

The OAuth mechanics (authorize URL, code exchange, refresh, error answers) are authlib's OAuth2Client.
`connected_accounts()` and `tokens_for()` are what the media worker uses: the connected lines, and a
token provider (`auth.GrantTokens`) for one of them.
"""

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from core import redaction
from integrations import vault
from telephony.carriers.goto.config import GoToConnectError
from telephony.models import GoToConnection
from tenants.models import Tenant, User
from tenants.services import audit_log_record

if TYPE_CHECKING:
    from telephony.carriers.goto.auth import GrantTokens

logger = logging.getLogger(__name__)

SESSION_KEY = "goto_oauth_pending"
STATE_SALT = "telephony.goto.oauth-state"
STATE_SECONDS = 600  # a consent not finished within ten minutes starts over
ERROR_CHARS = 200
VIA_DASHBOARD, VIA_ADMIN = "dashboard", "admin"

# Wall-clock seconds; tests replace it (state expiry, token lifetimes) instead of waiting.
clock: Callable[[], float] = time.time


class GrantError(GoToConnectError):
    """The consent or the grant failed; the message is safe to show (no token, code or secret in it)."""

    code = "goto_grant_failed"
    status_code = 400


def reconnect_required(message: str) -> GoToConnectError:
    """The error every use of a revoked or expired grant raises, until a tenant admin reconnects."""
    return GoToConnectError(message, code="goto_reconnect_required", status_code=409)


def now() -> datetime:
    return datetime.fromtimestamp(clock(), tz=timezone.get_current_timezone())


def configured() -> bool:
    return bool(settings.GOTO_CLIENT_ID and settings.GOTO_CLIENT_SECRET)


def _not_configured() -> GrantError:
    return GrantError(
        "GoTo is not set up on this platform: the operator must set GOTO_CLIENT_ID and GOTO_CLIENT_SECRET.",
        code="goto_not_configured",
        status_code=503,
    )


def oauth_client(*, redirect_uri: str | None = None) -> OAuth2Client:
    """authlib's client for GoTo's token endpoint: form-encoded requests, client id and secret as HTTP Basic."""
    return OAuth2Client(
        client_id=settings.GOTO_CLIENT_ID,
        client_secret=settings.GOTO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 (a method's name)
        redirect_uri=redirect_uri,
        timeout=settings.GOTO_REQUEST_TIMEOUT_SECONDS,
    )


def scrub(text: str, *values: str) -> str:
    """`text` safe to store and show: our client secret and the given tokens masked, cut short."""
    return redaction.mask_secrets(text, [settings.GOTO_CLIENT_SECRET, *values])[:ERROR_CHARS]


# --- the consent ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingConsent:
    """What the session remembered when the consent started."""

    tenant_id: str
    via: str
    redirect_uri: str


def consent_url(session, *, tenant_id, via: str, redirect_uri: str) -> str:
    """GoTo's authorize URL for this consent; remembers its single-use state in `session`."""
    if not configured():
        raise _not_configured()
    nonce = secrets.token_urlsafe(24)
    session[SESSION_KEY] = {
        "nonce": nonce,
        "tenant": str(tenant_id),
        "via": via,
        "redirect_uri": redirect_uri,
        "issued_at": clock(),
    }
    state = signing.dumps({"n": nonce, "t": str(tenant_id)}, salt=STATE_SALT)
    with oauth_client(redirect_uri=redirect_uri) as client:
        url, _ = client.create_authorization_url(
            settings.GOTO_OAUTH_AUTHORIZE_URL, state=state, scope=" ".join(settings.GOTO_OAUTH_SCOPES)
        )
    return url


def state_take(session, state: str) -> PendingConsent:
    """The consent this `state` belongs to; GrantError when it is forged, replayed, stale or from elsewhere.

    The pending consent leaves the session whatever the outcome: a state is good for one callback only.
    """
    pending = session.pop(SESSION_KEY, None)
    refused = GrantError(
        "This GoTo sign-in link is not valid any more (expired, already used, or started in another "
        "browser). Start again with Connect GoTo.",
        code="goto_state_invalid",
    )
    try:
        payload = signing.loads(state or "", salt=STATE_SALT)
    except signing.BadSignature:
        raise refused from None
    if not isinstance(pending, dict) or not isinstance(payload, dict):
        raise refused
    if not secrets.compare_digest(str(payload.get("n", "")), str(pending.get("nonce", ""))):
        raise refused
    if payload.get("t") != pending.get("tenant"):
        raise refused
    issued_at = pending.get("issued_at")
    if not isinstance(issued_at, int | float) or not 0 <= clock() - issued_at <= STATE_SECONDS:
        raise refused
    return PendingConsent(tenant_id=pending["tenant"], via=pending["via"], redirect_uri=pending["redirect_uri"])


@dataclass(frozen=True)
class Grant:
    """A token endpoint's answer. Holds secrets: never log it or put it in an answer."""

    access_token: str
    refresh_token: str
    expires_in: float
    scope: str
    principal: str

    def __repr__(self) -> str:
        return f"<Grant principal={self.principal!r} scope={self.scope!r}>"


def token_request(call: Callable[[OAuth2Client], Any], *, what: str, secrets_in_play: tuple[str, ...]) -> Grant:
    """Run one token-endpoint request through authlib and read its answer.

    A refusal (an OAuth error, or HTTP 400/401) raises GrantError with code `goto_grant_refused`; an
    endpoint that cannot answer (unreachable, 5xx, not JSON) raises a retryable GoToConnectError.
    """
    with oauth_client() as client:
        try:
            answer = call(client)
        except OAuthError as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
            raise GrantError(
                f"GoTo refused {what} ({scrub(reason, *secrets_in_play)}).", code="goto_grant_refused"
            ) from None
        except httpx2.HTTPStatusError as exc:
            status = exc.response.status_code
            if status in (400, 401):
                raise GrantError(f"GoTo refused {what} (HTTP {status}).", code="goto_grant_refused") from None
            raise GoToConnectError(
                f"GoTo's token endpoint failed (HTTP {status}).", code="pbx_token_unavailable", retryable=True
            ) from None
        except (httpx2.HTTPError, ValueError) as exc:
            raise GoToConnectError(
                f"GoTo's token endpoint could not be used ({type(exc).__name__}).",
                code="pbx_token_unavailable",
                retryable=True,
            ) from None
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise GoToConnectError(
            "GoTo's token endpoint answered without an access_token.", code="pbx_token_unavailable", retryable=True
        )
    try:
        expires_in = float(answer.get("expires_in") or 3600)
    except (TypeError, ValueError):
        expires_in = 3600.0
    refresh = answer.get("refresh_token")
    return Grant(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) else "",
        expires_in=expires_in,
        scope=str(answer.get("scope") or ""),
        principal=str(answer.get("principal") or ""),
    )


def exchange_code(*, code: str, redirect_uri: str) -> Grant:
    """Trade the authorization code for tokens (grant_type=authorization_code, our client as HTTP Basic)."""
    if not configured():
        raise _not_configured()
    grant = token_request(
        lambda client: client.fetch_token(
            settings.GOTO_OAUTH_TOKEN_URL,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            client_id=settings.GOTO_CLIENT_ID,  # GoTo's own samples send it in the body too
        ),
        what="the sign-in",
        secrets_in_play=(code,),
    )
    if not grant.refresh_token:
        raise GrantError("GoTo answered the sign-in without a refresh token, so the platform could not stay connected.")
    return grant


@dataclass(frozen=True)
class GoToLine:
    """The consenting user's account and the line the bridge's device will use."""

    account_key: str
    organization_id: str
    extension: str
    line_id: str
    email: str = ""


def _get_json(url: str, access_token: str, what: str) -> Any:
    try:
        response = httpx2.get(
            url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=settings.GOTO_REQUEST_TIMEOUT_SECONDS,
        )
    except httpx2.HTTPError as exc:
        raise GrantError(f"GoTo could not be reached to read {what} ({type(exc).__name__}).") from None
    if response.status_code != 200:
        raise GrantError(f"GoTo would not give {what} (HTTP {response.status_code}).")
    try:
        return response.json()
    except ValueError:
        raise GrantError(f"GoTo answered {what} with something that is not JSON.") from None


def read_line(access_token: str) -> GoToLine:
    """The account key (GET /admin/rest/v1/me) and the user's primary line (GET /users/v1/lines)."""
    me = _get_json(f"{settings.GOTO_ADMIN_API_BASE_URL.rstrip('/')}/admin/rest/v1/me", access_token, "the account")
    accounts = me.get("accounts") if isinstance(me, dict) else None
    keys = [str(a["key"]) for a in accounts or [] if isinstance(a, dict) and a.get("key")]
    if not keys:
        raise GrantError("The GoTo user you signed in as belongs to no GoTo Connect account.")
    lines = _get_json(f"{settings.GOTO_API_BASE_URL.rstrip('/')}/users/v1/lines", access_token, "the phone lines")
    items = lines.get("items") if isinstance(lines, dict) else lines
    usable = [
        line
        for line in items or []
        if isinstance(line, dict)
        and line.get("id")
        and line.get("number")
        and isinstance(line.get("organization"), dict)
        and line["organization"].get("id")
    ]
    if not usable:
        raise GrantError(
            "The GoTo user you signed in as has no phone line: sign in as the user whose extension the agents "
            "should answer on."
        )
    line = next((item for item in usable if item.get("primary")), usable[0])
    account_key = str(line.get("accountKey") or "")
    return GoToLine(
        account_key=account_key if account_key in keys else keys[0],
        organization_id=str(line["organization"]["id"]),
        extension=str(line["number"]),
        line_id=str(line["id"]),
        email=str(me.get("email") or ""),
    )


# --- storage --------------------------------------------------------------------------------------


def _seal(connection: GoToConnection, secret: dict) -> None:
    connection.key_id, connection.nonce, connection.ciphertext = vault.encrypt(
        tenant_id=connection.tenant_id, credential_id=connection.pk, secret=secret
    )


def seal_tokens(connection: GoToConnection, *, refresh_token: str, access_token: str, expires_in: float) -> None:
    """Seal the tokens onto the (locked or new) row with the vault, bound to its tenant and id."""
    _seal(connection, {"refresh_token": refresh_token, "access_token": access_token})
    connection.access_expires_at = now() + timedelta(seconds=expires_in)


def open_tokens(connection: GoToConnection) -> dict:
    """The sealed {"refresh_token", "access_token"}; a VaultError (naming the row only) if it cannot be read."""
    return vault.open_sealed(
        key_id=connection.key_id,
        nonce=connection.nonce,
        ciphertext=connection.ciphertext,
        tenant_id=connection.tenant_id,
        bound_id=connection.pk,
        label=f"The GoTo connection of tenant {connection.tenant_id}",
    )


@transaction.atomic
def connection_save(
    *, tenant: Tenant, grant: Grant, line: GoToLine, actor_user: User | None = None, ip_address: str | None = None
) -> GoToConnection:
    """Store the tenant's GoTo grant and line (replacing an earlier one), tokens sealed, status connected."""
    connection = GoToConnection.objects.for_tenant(tenant).select_for_update().first()
    if connection is None:
        connection = GoToConnection(tenant=tenant)
    connection.status = GoToConnection.Status.CONNECTED
    connection.account_key, connection.organization_id = line.account_key, line.organization_id
    connection.extension, connection.line_id = line.extension, line.line_id
    connection.principal = (grant.principal or line.email)[:255]
    connection.scopes = grant.scope
    seal_tokens(
        connection, refresh_token=grant.refresh_token, access_token=grant.access_token, expires_in=grant.expires_in
    )
    connection.connected_at = connection.refreshed_at = now()
    connection.last_error = ""
    connection.connected_by = actor_user
    connection.save()
    changes = {"account_key": line.account_key, "extension": line.extension, "line_id": line.line_id}
    audit_log_record(
        tenant=tenant,
        action="goto.connect",
        obj=connection,
        changes=changes,
        actor_user=actor_user,
        ip_address=ip_address,
    )
    return connection


@transaction.atomic
def connection_disconnect(
    *, connection: GoToConnection, actor_user: User | None = None, ip_address: str | None = None
) -> GoToConnection:
    """Forget the tenant's GoTo grant: the sealed tokens are wiped and its lines take no calls."""
    connection = GoToConnection.objects.for_tenant(connection.tenant_id).select_for_update().get(pk=connection.pk)
    connection.status = GoToConnection.Status.DISCONNECTED
    connection.key_id, connection.nonce, connection.ciphertext = "", b"", b""
    connection.access_expires_at = None
    connection.save()
    audit_log_record(
        tenant=connection.tenant,
        action="goto.disconnect",
        obj=connection,
        changes={"extension": connection.extension},
        actor_user=actor_user,
        ip_address=ip_address,
    )
    return connection


def connections_reseal() -> tuple[int, list[str]]:
    """Re-seal every GoTo connection's tokens not under the vault's newest key (`rotate_credential_keys`)."""
    current = vault.keyring().current_id
    # Key rotation covers the whole vault, every tenant's connections with it.
    stale = GoToConnection.objects.dangerously_unscoped().exclude(key_id__in=["", current])
    resealed, failures = 0, []
    for pk in list(stale.values_list("pk", flat=True)):
        try:
            resealed += _connection_reseal(pk, current)
        except vault.VaultError as exc:
            failures.append(exc.message)
            logger.warning("GoTo connection %s not re-sealed: %s", pk, exc.message)
    return resealed, failures


@transaction.atomic
def _connection_reseal(pk, key_id: str) -> int:
    connection = GoToConnection.objects.dangerously_unscoped().select_for_update().filter(pk=pk).first()
    if connection is None or connection.key_id in ("", key_id):
        return 0  # gone, disconnected or re-sealed since the list was read
    _seal(connection, open_tokens(connection))
    connection.save(update_fields=["key_id", "nonce", "ciphertext", "updated_at"])
    return 1


# --- what the media worker uses -------------------------------------------------------------------


@dataclass(frozen=True)
class GoToAccount:
    """One connected GoTo line, as plain values for the media worker."""

    tenant_id: str
    connection_id: str
    account_key: str
    organization_id: str
    extension: str
    line_id: str


def connected_accounts() -> list[GoToAccount]:
    """Every tenant's connected GoTo line (the media worker serves them all)."""
    rows = GoToConnection.objects.dangerously_unscoped().filter(status=GoToConnection.Status.CONNECTED)
    return [
        GoToAccount(
            tenant_id=str(row.tenant_id),
            connection_id=str(row.pk),
            account_key=row.account_key,
            organization_id=row.organization_id,
            extension=row.extension,
            line_id=row.line_id,
        )
        for row in rows.order_by("created_at")
    ]


def tokens_for(connection_id) -> "GrantTokens":
    """The token provider of one connection (`auth.GrantTokens`: async token(), invalidate(), last_token)."""
    from telephony.carriers.goto.auth import GrantTokens  # auth builds on this module

    return GrantTokens(str(connection_id))
