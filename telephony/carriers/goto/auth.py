"""Access tokens for GoTo Connect's REST API, cached and refreshed before they expire."""

import logging

import httpx

from integrations.gateway import GatewayConfigError, GatewayError
from integrations.gateway.oauth import ClientCredentials, TokenCache
from telephony.carriers.goto import metrics
from telephony.carriers.goto.config import SERVICE, TOKENS, GoToConfig, GoToConnectError

logger = logging.getLogger(__name__)


class _TokenPoster:
    """What `fetch_token` needs of an HTTP client, opening one only when a token is really fetched.

    Fetches happen about once an hour; a client kept open for them would also tie this provider to one
    event loop, and building one per `token()` call (cache hits included) costs an SSL context each time.
    """

    def __init__(self, transport: httpx.AsyncBaseTransport | None):
        self.transport = transport

    async def post(self, url: str, **kwargs) -> httpx.Response:
        async with httpx.AsyncClient(transport=self.transport) as client:
            response = await client.post(url, **kwargs)
        metrics.pbx_token_fetches_total.labels("ok" if response.status_code < 300 else "refused").inc()
        return response


class TokenProvider:
    """OAuth2 client-credentials tokens for GoToConnect, cached and refreshed before they expire.

    The cache is the integration gateway's `TokenCache` (process-wide by default): a token is reused
    until less than 60 s (or 10% of its lifetime) remains, and concurrent callers share one fetch under
    an asyncio.Lock, so a burst of calls at expiry costs one request to the token endpoint.
    """

    def __init__(
        self,
        config: GoToConfig,
        *,
        cache: TokenCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.config = config
        self._cache = cache if cache is not None else TOKENS
        self._poster = _TokenPoster(transport)
        self._creds = ClientCredentials(
            SERVICE, config.token_url, config.client_id, config.client_secret, tuple(config.scopes)
        )
        self._last: str | None = None

    async def token(self) -> str:
        """A valid access token (raises GoToConnectError when GoToConnect will not give one)."""
        if not self.config.configured:
            raise GoToConnectError(
                "GoToConnect is not configured: set GOTO_CLIENT_ID and GOTO_CLIENT_SECRET.",
                code="goto_not_configured",
                status_code=503,
            )
        try:
            value = await self._cache.token(self._poster, "", self._creds, self.config.timeout_seconds)
        except GatewayConfigError as exc:
            raise GoToConnectError(
                f"GoToConnect refused our client credentials ({exc.message}); "
                "check GOTO_CLIENT_ID and GOTO_CLIENT_SECRET.",
                code="pbx_auth_failed",
            ) from exc
        except GatewayError as exc:
            metrics.pbx_token_fetches_total.labels("error").inc()
            raise GoToConnectError(
                f"GoToConnect's token endpoint failed: {exc.message}", code="pbx_token_unavailable", retryable=True
            ) from exc
        self._last = value
        return value

    @property
    def last_token(self) -> str | None:
        """The token handed out last (for masking it wherever text from the PBX is logged)."""
        return self._last

    def invalidate(self, token: str | None = None) -> None:
        """Forget `token` (default: the last one handed out) after GoToConnect refused it, unless already replaced."""
        value = token or self._last
        if value:
            self._cache.invalidate("", self._creds, value)
