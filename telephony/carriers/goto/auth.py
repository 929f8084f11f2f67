"""Access tokens for GoTo Connect's REST API, cached and refreshed before they expire.

`GrantTokens` serves one tenant's GoTo grant (`grant.py`: authorization code + refresh token, which is
all GoTo's OAuth server grants; it lists no client-credentials grant).
"""

import asyncio
import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction

from telephony.carriers.goto import grant, metrics
from telephony.carriers.goto.config import GoToConnectError
from telephony.models import GoToConnection

logger = logging.getLogger(__name__)


REFRESH_MARGIN_SECONDS = 60.0  # refresh when less than this (or half the lifetime, if shorter) remains


@dataclass(frozen=True)
class _Access:
    value: str
    expires_at: float  # grant.clock() seconds
    lifetime: float

    def fresh(self, now: float) -> bool:
        return self.expires_at - now > min(REFRESH_MARGIN_SECONDS, self.lifetime / 2)


class _Cache:
    """Access tokens of this process by connection id, with one asyncio.Lock per (event loop, connection)."""

    def __init__(self):
        self.tokens: dict[str, _Access] = {}
        self.refused: dict[str, str] = {}  # the last token GoTo refused (401), never handed out again
        self._guard = threading.Lock()
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def lock(self, connection_id: str) -> asyncio.Lock:
        with self._guard:
            locks = self._locks.setdefault(asyncio.get_running_loop(), {})
            return locks.setdefault(connection_id, asyncio.Lock())

    def clear(self) -> None:
        self.tokens.clear()
        self.refused.clear()


GRANT_TOKENS = _Cache()


class GrantTokens:
    """Access tokens of one tenant's GoTo connection: cached, refreshed before expiry, one refresh at a time.

    In this process concurrent callers share one refresh (an asyncio.Lock per connection). Across
    processes the refresh runs with the connection's row locked (SELECT ... FOR UPDATE): a process that
    waited finds the token the other one stored (sealed beside the refresh token) and uses it instead of
    refreshing again, and a rotated refresh token is never used twice. A refresh answer without a
    refresh_token keeps the old one (GoTo's samples do the same); a new one is sealed in its place.

    A refused refresh (invalid_grant, HTTP 400/401: revoked, expired) marks the connection
    `reconnect_required` with the reason, and this and every later `token()` raises GoToConnectError
    `goto_reconnect_required` without asking GoTo again, until a tenant admin reconnects.
    """

    def __init__(self, connection_id: str, *, cache: _Cache | None = None):
        self.connection_id = str(connection_id)
        self._cache = cache if cache is not None else GRANT_TOKENS
        self._last: str | None = None

    async def token(self) -> str:
        """A valid access token (raises GoToConnectError when the grant cannot give one)."""
        cached = self._cache.tokens.get(self.connection_id)
        if cached is None or not cached.fresh(grant.clock()):
            async with self._cache.lock(self.connection_id):
                cached = self._cache.tokens.get(self.connection_id)
                if cached is None or not cached.fresh(grant.clock()):
                    refused = self._cache.refused.get(self.connection_id, "")
                    # Its own thread: the refresh holds a row lock across one HTTP request.
                    cached = await sync_to_async(_load_or_refresh, thread_sensitive=False)(self.connection_id, refused)
                    self._cache.tokens[self.connection_id] = cached
        self._last = cached.value
        return cached.value

    @property
    def last_token(self) -> str | None:
        """The token handed out last (for masking it wherever text from GoTo is logged)."""
        return self._last

    def invalidate(self, token: str | None = None) -> None:
        """Forget `token` (default: the last one handed out) after GoTo refused it, unless already replaced."""
        value = token or self._last
        if not value:
            return
        self._cache.refused[self.connection_id] = value
        cached = self._cache.tokens.get(self.connection_id)
        if cached is not None and cached.value == value:
            self._cache.tokens.pop(self.connection_id, None)


def _stamp(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def _load_or_refresh(connection_id: str, refused: str) -> _Access:
    try:
        outcome = _locked_refresh(connection_id, refused)
    finally:
        db_connection.close()  # an executor thread's own connection: not left open behind it (once an hour)
    if isinstance(outcome, GoToConnectError):
        raise outcome
    return outcome


def _locked_refresh(connection_id: str, refused: str) -> "_Access | GoToConnectError":
    """Under the row lock: the stored token if still fresh, else a refresh. A refusal is returned, not raised,
    so that the reconnect_required mark commits."""
    with transaction.atomic():
        # The media worker serves every tenant's lines: it names a connection by its id alone.
        connection = GoToConnection.objects.dangerously_unscoped().select_for_update().filter(pk=connection_id).first()
        if connection is None or connection.status == GoToConnection.Status.DISCONNECTED:
            return GoToConnectError(
                "GoTo is not connected for this tenant: a tenant admin must connect it on the Phone numbers page.",
                code="goto_not_connected",
                status_code=409,
            )
        if connection.status == GoToConnection.Status.RECONNECT_REQUIRED:
            return grant.reconnect_required(_reconnect_message(connection.last_error))
        tokens = grant.open_tokens(connection)
        now = grant.clock()
        stored = _Access(
            tokens.get("access_token", ""),
            _stamp(connection.access_expires_at),
            max(1.0, _stamp(connection.access_expires_at) - _stamp(connection.refreshed_at)),
        )
        if stored.value and stored.value != refused and stored.fresh(now):
            return stored  # another process refreshed while we waited for the lock
        old_refresh = tokens["refresh_token"]
        try:
            answer = grant.token_request(
                lambda client: client.refresh_token(settings.GOTO_OAUTH_TOKEN_URL, refresh_token=old_refresh),
                what="the stored sign-in",
                secrets_in_play=(old_refresh,),
            )
        except grant.GrantError as exc:
            connection.status = GoToConnection.Status.RECONNECT_REQUIRED
            connection.last_error = grant.scrub(exc.message, old_refresh)
            connection.save(update_fields=["status", "last_error", "updated_at"])
            logger.warning(
                "GoTo refused the refresh of connection %s; it needs reconnecting: %s",
                connection_id,
                connection.last_error,
            )
            metrics.pbx_token_fetches_total.labels("refused").inc()
            return grant.reconnect_required(_reconnect_message(connection.last_error))
        except GoToConnectError as exc:
            metrics.pbx_token_fetches_total.labels("error").inc()
            return exc
        metrics.pbx_token_fetches_total.labels("ok").inc()
        grant.seal_tokens(
            connection,
            refresh_token=answer.refresh_token or old_refresh,
            access_token=answer.access_token,
            expires_in=answer.expires_in,
        )
        connection.refreshed_at = grant.now()
        connection.scopes = answer.scope or connection.scopes
        connection.save()
        return _Access(answer.access_token, grant.clock() + answer.expires_in, answer.expires_in)


def _reconnect_message(reason: str) -> str:
    why = f" ({reason})" if reason else ""
    return f"GoTo no longer accepts this tenant's sign-in{why}: a tenant admin must reconnect GoTo on the Phone numbers page."
