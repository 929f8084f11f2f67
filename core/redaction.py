"""Secrets out of text we show or log, in the encodings providers echo them in.

A provider's error may quote what it was sent: a key as is, URL-encoded, inside Basic auth (base64),
or inside a JWT whose payload names the API key (LiveKit's tokens carry it as `iss`). Replacing the raw
value is not enough, so:

- every JWT-shaped token is masked whole (a signed token is itself a credential, and its payload is
  only base64url: readable by anyone);
- every long base64 / base64url run that decodes to text containing a secret is masked;
- each secret is also masked URL-encoded and in the base64 forms of itself.
"""

import base64
import binascii
import re
from urllib.parse import quote, quote_plus

MASK = "••••"
MIN_SECRET_CHARS = 4

# header.payload.signature, each base64url; the header of a JWT always starts with `{"` -> "eyJ".
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def mask_tokens(text: str) -> str:
    """`text` with every JWT-shaped token masked (used on everything logged, secret known or not)."""
    return JWT.sub(MASK, text) if "eyJ" in text else text


def _decodes_to_secret(run: str, values: list[str]) -> bool:
    padded = run + "=" * (-len(run) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decode(padded).decode("utf-8", "ignore")
        except (binascii.Error, ValueError):
            continue
        if any(value in decoded for value in values):
            return True
    return False


def _encodings(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    forms |= {base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def mask_secrets(text: str, values) -> str:
    """`text` without the secret `values`: raw, URL-encoded, base64, and inside tokens or base64 blobs."""
    values = [value for value in values if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS]
    text = mask_tokens(text)
    if not values:
        return text
    text = BASE64_RUN.sub(lambda m: MASK if _decodes_to_secret(m.group(0), values) else m.group(0), text)
    forms = sorted({form for value in values for form in _encodings(value)}, key=len, reverse=True)
    for form in forms:  # longest first: one value may contain another
        text = text.replace(form, MASK)
    return text
