"""Redaction for the audit rows and log lines of outbound calls.

Three rules, applied everywhere a request or response is recorded:
- JSON keys, query parameters and header names in the service's redact list, compared
  case-insensitively and ignoring '-' and '_' (so creditCard, Credit-Card and credit_card all match);
- credential headers always (Authorization, Cookie, X-Api-Key, ...);
- every secret value resolved from the vault for this call, wherever it appears in any text.
"""

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from core import jsonsafe

MASK = "[REDACTED]"
ALWAYS_HEADERS = frozenset({"authorization", "proxyauthorization", "cookie", "setcookie", "xapikey"})
MIN_SECRET_LENGTH = 4  # shorter "secrets" would shred ordinary text without protecting anything
EXCERPT_CHARS = 8192


def _norm(name: str) -> str:
    return re.sub(r"[-_\s]", "", str(name)).lower()


def _key_pattern(keys: Iterable[str]) -> re.Pattern | None:
    # `password=...`, `"ssn": "..."`, `credit-card: ...` in bodies that are not JSON (forms, logs, HTML).
    names = [re.sub(r"[-_]", "[-_]?", re.escape(k).replace(r"\-", "-")) for k in keys if k]
    if not names:
        return None
    return re.compile(
        rf"""(?i)(["']?\b(?:{"|".join(names)})\b["']?\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^&\s,;}}<]+)"""
    )


class Redactor:
    """Redacts one call's records: the service's redact keys plus the secrets resolved for the call."""

    def __init__(self, keys: Iterable[str] = (), secrets: Iterable[str] = ()):
        self.keys = frozenset(_norm(k) for k in keys if k)
        self._pattern = _key_pattern(keys)
        self.secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, value: str) -> None:
        """Also scrub `value` (and its URL-encoded and JSON-escaped forms) from every text."""
        if value and len(value) >= MIN_SECRET_LENGTH:
            self.secrets.update({value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]})

    def sensitive(self, name: str) -> bool:
        return _norm(name) in self.keys

    def text(self, value: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            value = value.replace(secret, MASK)
        if self._pattern is not None:
            value = self._pattern.sub(lambda m: m.group(1) + MASK, value)
        return value

    def json(self, value):
        """A copy of a JSON value with sensitive keys masked at any depth and secrets scrubbed."""
        if isinstance(value, Mapping):
            return {str(k): MASK if self.sensitive(k) else self.json(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        def hidden(name: str) -> bool:  # X-Password counts as password
            return _norm(name) in ALWAYS_HEADERS or self.sensitive(name) or self.sensitive(re.sub(r"(?i)^x-", "", name))

        return {name: MASK if hidden(name) else self.text(value) for name, value in headers.items()}

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:  # credentials in the URL itself
            netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
        query = urlencode(
            [(k, MASK if self.sensitive(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
            safe="[]",
        )
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def body(self, content: bytes | str | None):
        """A request or response body for the audit row: redacted JSON, or a redacted text excerpt."""
        if content in (None, b"", ""):
            return None
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        try:
            return self.json(jsonsafe.loads(text))
        except ValueError:
            return self.text(text)[:EXCERPT_CHARS]  # redact first: a cut could split a secret
