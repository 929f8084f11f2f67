"""Which hosts the platform may call on a tenant's behalf.

Tenants choose the URLs of their tools, webhooks, backends and credential checks. In production the
platform must not become a window onto its own network (SSRF), so hosts that resolve to private,
loopback or link-local addresses are refused unless INTEGRATION_ALLOW_PRIVATE_NETWORKS is on (the
default with DEBUG: embedded defaults and tests talk to local servers). Resolution is checked before
each call; DNS rebinding between the check and the connection is not covered.
"""

import ipaddress
import socket
import time
from urllib.parse import urlsplit

from django.conf import settings

CACHE_SECONDS = 60
_verdicts: dict[str, tuple[float, str]] = {}


def address_problem(url: str) -> str:
    """Why the platform will not call `url`, or "" when it may (blocking: resolves the host)."""
    if settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS:
        return ""
    host = urlsplit(url).hostname or ""
    cached = _verdicts.get(host)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    verdict = _verdict(host)
    _verdicts[host] = (time.monotonic() + CACHE_SECONDS, verdict)
    return verdict


def _verdict(host: str) -> str:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return f"Could not resolve {host}."
    if any(not ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses):
        return f"{host} is a private, loopback or link-local address, which the platform does not call."
    return ""


def forget() -> None:
    _verdicts.clear()
