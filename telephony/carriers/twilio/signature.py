"""Twilio's request signatures (`X-Twilio-Signature`) and the per-call media stream token.

Twilio signs each webhook with the account's auth token over the full URL it requested and the sorted
POST parameters (HMAC-SHA1, base64); `twilio.request_validator.RequestValidator` checks it. The URL must
be the one Twilio used: behind a proxy or load balancer that is not what Django sees unless the proxy
passes the original scheme and host (`SECURE_PROXY_SSL_HEADER`, `USE_X_FORWARDED_HOST`), so
`TWILIO_WEBHOOK_BASE_URL`, when set, names the public origin and replaces the request's own.
"""

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"
STREAM_PATH = "/ws/v1/carriers/twilio/stream"  # the Media Streams websocket (telephony/routing.py)
STREAM_TOKEN_SALT = "telephony.twilio.stream"  # noqa: S105 (a signing namespace, not a secret)
STREAM_TOKEN_MAX_AGE = 120  # seconds: Twilio opens the stream right after it reads our TwiML


def public_url(request: HttpRequest, path: str | None = None) -> str:
    """The absolute URL of `path` (default: the request's own, with its query) as Twilio reaches it."""
    path = request.get_full_path() if path is None else path
    base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def websocket_url(request: HttpRequest | None, path: str) -> str:
    """The wss:// (ws:// for plain http) URL of `path` on the origin Twilio reached (None: on TWILIO_WEBHOOK_BASE_URL)."""
    url = public_url(request, path) if request is not None else settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + path
    return (
        "wss://" + url.removeprefix("https://") if url.startswith("https://") else "ws://" + url.removeprefix("http://")
    )


def is_valid(request: HttpRequest, auth_token: str) -> bool:
    """Whether the request carries Twilio's signature, made with `auth_token`, of this URL and body."""
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    # The QueryDict itself: Twilio signs every value of a repeated parameter, and the SDK reads them with getlist.
    return RequestValidator(auth_token).validate(public_url(request), request.POST, signature)


def stream_token(*, call_id: str, tenant_id: str, call_sid: str, amd: bool = False, consult: bool = False) -> str:
    """A signed, short-lived token naming the call a media stream may carry (`amd`: listen for a machine first).

    `consult`: the stream is a second leg of that call (a supervisor we dialled for a conference), whose
    CallSid is not known when its TwiML is written (`call_sid` is then ""): the stream consumer checks it
    against the consult legs registered for the call instead (telephony.services.consult_leg_register).
    """
    claims: dict = {"call": str(call_id), "tenant": str(tenant_id), "sid": call_sid, "amd": amd}
    if consult:
        claims["consult"] = True
    return signing.dumps(claims, salt=STREAM_TOKEN_SALT)


def stream_claims(token: str) -> dict | None:
    """The claims of a valid, unexpired stream token, or None."""
    try:
        claims = signing.loads(token, salt=STREAM_TOKEN_SALT, max_age=STREAM_TOKEN_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return claims if isinstance(claims, dict) and {"call", "tenant", "sid"} <= claims.keys() else None
