"""The official `twilio` SDK's REST client, pointed at `TWILIO_API_BASE_URL`.

Twilio's SDK builds every URL on a `*.twilio.com` host. Tests (and an operator's egress proxy) need it
to speak to another base URL, so the client gets an HTTP client that keeps the SDK's path, query, body
and authentication and replaces only the scheme and host. With the default base URL nothing is rewritten.
Credential verification (this app) and the Twilio carrier adapter (telephony) both build clients here.
"""

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

TIMEOUT_SECONDS = 10.0
TWILIO_API = "https://api.twilio.com"


def rebase(url: str, base_url: str) -> str:
    """`url` with the scheme and host (and any path prefix) of `base_url`, its own path and query kept."""
    if not base_url or base_url.rstrip("/") == TWILIO_API:
        return url
    base, parts = urlsplit(base_url), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))


class RebasedHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client (requests), sending to `base_url` instead of Twilio's hosts."""

    def __init__(self, base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url

    def request(self, method: str, url: str, *args, **kwargs) -> Response:  # type: ignore[override]
        return super().request(method, rebase(url, self.base_url), *args, **kwargs)


def client(account_sid: str, auth_token: str, *, timeout: float = TIMEOUT_SECONDS) -> Client:
    """A REST client for one Twilio account (no retries: the callers decide what a failure means)."""
    return Client(account_sid, auth_token, http_client=RebasedHttpClient(settings.TWILIO_API_BASE_URL, timeout=timeout))
