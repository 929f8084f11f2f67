"""A knowledge document from a web page: fetched behind the platform's SSRF guard, within size and time limits.

The URL is the tenant's, so it gets what every tenant URL gets (integrations.netguard, the integration
gateway's guard): hosts resolving to private, loopback or link-local addresses are refused unless
INTEGRATION_ALLOW_PRIVATE_NETWORKS is on, every redirect is checked again, and the address actually
connected to is checked once more (a DNS answer that changed since the check is refused too). The body is
read in pieces and abandoned past FETCH_MAX_BYTES or FETCH_SECONDS. HTML is reduced to text with the
standard library's parser; a PDF, DOCX or plain-text URL is read like an upload of that file.
"""

import ipaddress
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from agents.knowledge import formats
from core.errors import ApplicationError
from integrations.netguard import address_problem

log = logging.getLogger(__name__)

FETCH_SECONDS = 15.0
FETCH_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "VoiceApp-Knowledge/1.0 (+knowledge base import)"
ACCEPT = f"text/html, text/plain, text/markdown, {formats.PDF}, {formats.DOCX};q=0.9, */*;q=0.1"
META_CHARSET_RE = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Fetched:
    url: str  # where the text came from (after redirects)
    text: str
    format: str


def refused(message: str) -> ApplicationError:
    return formats.refused(message, field="url")


def fetch(url: str, *, max_chars: int, clock: Callable[[], float] = time.monotonic) -> Fetched:
    """The text of the page at `url` (http or https), or an ApplicationError naming the `url` field."""
    deadline = clock() + FETCH_SECONDS
    try:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url)
            outcome = _get(url, deadline, clock)
            if isinstance(outcome, str):
                url = outcome
                continue
            content_type, body = outcome
            return Fetched(url, *_text(body, content_type, max_chars))
    except httpx.TimeoutException as exc:
        raise refused(f"The page did not answer within {FETCH_SECONDS:g} seconds.") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        log.info("knowledge fetch: %s failed (%s)", urlsplit(url).hostname, type(exc).__name__)
        raise refused(f"The page could not be fetched ({type(exc).__name__}).") from exc
    raise refused(f"The page redirected more than {MAX_REDIRECTS} times.")


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused("Give an http:// or https:// address.")
    if parts.username or parts.password:
        raise refused("The address must not contain a user name or password.")
    problem = address_problem(url)
    if problem:
        log.info("knowledge fetch refused: %s", problem)
        raise refused(f"The platform does not fetch this address: {problem}")


def _get(url: str, deadline: float, clock: Callable[[], float]) -> str | tuple[str, bytes]:
    """One request: the next URL of a redirect, or (content type, body)."""
    timeout = httpx.Timeout(max(0.1, min(10.0, deadline - clock())))
    # identity: a compressed body could inflate far past its size within one read
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "identity"}
    with (
        httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        _check_peer(response, url)
        if response.is_redirect and response.headers.get("location"):
            return urljoin(url, response.headers["location"])
        if response.status_code >= 400:
            raise refused(f"The page answered HTTP {response.status_code}.")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > FETCH_MAX_BYTES:
            raise refused(f"The page is larger than {FETCH_MAX_BYTES:,} bytes.")
        body = bytearray()
        for piece in response.iter_bytes():
            body += piece
            if len(body) > FETCH_MAX_BYTES:
                raise refused(f"The page is larger than {FETCH_MAX_BYTES:,} bytes.")
            if clock() > deadline:
                raise refused(f"The page took longer than {FETCH_SECONDS:g} seconds to download.")
        return response.headers.get("content-type", ""), bytes(body)


def _check_peer(response: httpx.Response, url: str) -> None:
    """The address connected to must be public too (the host's DNS answer may differ from the check's)."""
    if settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS:
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return
    if not ipaddress.ip_address(str(peer[0]).split("%")[0]).is_global:
        log.warning("knowledge fetch: %s connected to a private address", urlsplit(url).hostname)
        raise refused("The platform does not fetch this address: it is a private, loopback or link-local address.")


def _text(body: bytes, content_type: str, max_chars: int) -> tuple[str, str]:
    kind = formats.kind_of(content_type, "", body)
    if kind in ("", "application/octet-stream") or (kind.endswith("+xml") and "html" in kind):
        kind = "text/html" if b"<html" in body[:2048].lower() else "text/plain"
    charset = _charset(content_type, body) if kind.startswith("text/") else None
    try:
        extracted = formats.extract(
            body, kind=kind, max_text_bytes=FETCH_MAX_BYTES, max_chars=max_chars, charset=charset
        )
    except ApplicationError as exc:
        raise refused(exc.message.replace("The file", "The page").replace("this file", "this page")) from exc
    return extracted.text, extracted.format


def _charset(content_type: str, body: bytes) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    if m := META_CHARSET_RE.search(body[:4096]):
        return m[1].decode("ascii")
    return "utf-8"
