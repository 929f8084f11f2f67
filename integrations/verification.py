"""Provider checks: one cheap authenticated call per provider, made before a credential is saved.

Each check uses the provider's SDK or documented HTTP API, with the base URL taken from settings (or,
for LiveKit and the generic HTTP check, from the secret itself), so tests can point them at local
servers. The result carries the provider's answer (status and error message), truncated and with the
secret scrubbed in case the provider echoes it.

The SDKs are imported inside their checks: only verification needs them, and importing anthropic alone
costs most of a second at every process start.
"""

import json
import logging
import re
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings

from core import jsonsafe, redaction
from integrations.netguard import address_problem

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
MESSAGE_CHARS = 300
MASK = redaction.MASK
PROVIDER_NAMES = {
    "anthropic": "Anthropic",
    "deepgram": "Deepgram",
    "gotoconnect": "GoToConnect",
    "livekit": "LiveKit",
    "twilio": "Twilio",
    "http": "the check URL",
}


@dataclass(frozen=True)
class VerificationResult:
    ok: bool | None  # None: nothing to check against (a generic secret without check_url)
    message: str  # the provider's answer, scrubbed of the secret

    @property
    def status(self) -> str:
        return {True: "verified", False: "failed", None: "unverified"}[self.ok]

    def verdict(self, provider: str) -> str:
        return verdict(provider, self.ok, self.message)


UNREACHABLE_PREFIX = "Could not reach "
STATUS_PREFIX = re.compile(r"^(\d{3}) ")
# The provider answered, but with its own failure: it neither accepted nor refused the credential.
NOT_A_REFUSAL = frozenset({408, 429})


def verdict(provider: str, ok: bool | None, message: str) -> str:
    """The outcome in words: "accepted", "did not accept" only when the provider refused the credential,
    "could not reach" when it was unreachable, "could not check" when it failed itself (5xx, 408, 429).

    `ok` and `message` are what a check returned (or what a credential stored of it): this module writes
    those messages, so the message says which of these happened.
    """
    name = PROVIDER_NAMES[provider]
    if ok:
        return f"{name} accepted the credential."
    if ok is None:
        return message
    if message.startswith(UNREACHABLE_PREFIX):
        return message
    status = STATUS_PREFIX.match(message)
    if status and (int(status.group(1)) >= 500 or int(status.group(1)) in NOT_A_REFUSAL):
        return f"Could not check the credential: {name} answered {message}"
    if status:
        return f"{name} did not accept the credential: {message}"
    return f"The credential was not checked: {message}"


def verify(provider: str, secret: dict) -> VerificationResult:
    """Check `secret` (already validated by vault.validate_secret) against its provider."""
    try:
        result = CHECKS[provider](secret)
    except Exception as exc:  # a check must answer, never break the request that asked for it
        result = VerificationResult(False, f"The check failed unexpectedly: {type(exc).__name__}: {exc}")
    result = VerificationResult(result.ok, scrub(result.message, secret))
    logger.info("credential check against %s: %s (%s)", provider, result.status, result.message)
    return result


# --- answers ------------------------------------------------------------------------------------


def scrub(text: str, secret: dict) -> str:
    """`text` without any secret value (nor the Basic-auth form of a client id and secret), truncated."""
    values = [value for value in secret.values() if isinstance(value, str)]
    if secret.get("client_id") and secret.get("client_secret"):
        values.append(f"{secret['client_id']}:{secret['client_secret']}")  # Basic auth, masked in base64 too
    text = redaction.mask_secrets(text, values)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def refused(status: int, body) -> VerificationResult:
    """'401 Unauthorized: authentication_error: invalid x-api-key' from a status and an error body."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    detail = error_detail(body)
    return VerificationResult(False, " ".join(filter(None, [str(status), phrase])) + (f": {detail}" if detail else ""))


def error_detail(body) -> str:
    """The error of a provider's body, whichever of the common shapes it uses."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = jsonsafe.loads(body)
        except ValueError:
            return " ".join(body.split())
    if not isinstance(body, dict):
        return "" if body is None else json.dumps(body)
    error = body.get("error")
    pairs = [
        (error.get("type"), error.get("message")) if isinstance(error, dict) else (None, None),  # Anthropic
        (body.get("err_code"), body.get("err_msg")),  # Deepgram
        (body.get("category"), body.get("message")),  # Deepgram, newer endpoints
        (error if isinstance(error, str) else None, body.get("error_description")),  # OAuth 2
        (body.get("code"), body.get("msg")),  # Twirp (LiveKit)
    ]
    for code, message in pairs:
        if message or code:
            return ": ".join(str(part) for part in (code, message) if part)
    return json.dumps(body, separators=(",", ":"))


def unreachable(provider: str, exc: BaseException) -> VerificationResult:
    cause = exc.__cause__ or exc.__context__
    reason = f"{exc}" + (f" ({cause})" if cause and str(cause) not in str(exc) else "")
    return VerificationResult(False, f"{UNREACHABLE_PREFIX}{PROVIDER_NAMES[provider]}: {reason or type(exc).__name__}")


def public_address_problem(url: str) -> str:
    """Why the platform will not call `url` (see integrations.netguard), or ""."""
    return address_problem(url)


# --- the checks ---------------------------------------------------------------------------------


def check_anthropic(secret: dict) -> VerificationResult:
    """List one model: any valid key may, and it costs no tokens."""
    import anthropic

    base_url = settings.ANTHROPIC_BASE_URL or None
    options = {"api_key": secret["api_key"], "base_url": base_url, "timeout": TIMEOUT_SECONDS, "max_retries": 0}
    with anthropic.Anthropic(**options) as client:
        try:
            page = client.models.list(limit=1)
        except anthropic.APIStatusError as exc:
            return refused(exc.status_code, exc.body if exc.body is not None else exc.response.text)
        except anthropic.APIConnectionError as exc:
            return unreachable("anthropic", exc)
    models = ", ".join(model.id for model in page.data) or "none"
    return VerificationResult(True, f"200 OK: the key lists models ({models})")


def _deepgram_environment():
    from deepgram.environment import DeepgramClientEnvironment

    if not settings.DEEPGRAM_BASE_URL:
        return DeepgramClientEnvironment.PRODUCTION
    # The setting may name the REST host or the streaming endpoint (wss://host/v1/listen): keep the host.
    parts = urlsplit(settings.DEEPGRAM_BASE_URL)
    secure = parts.scheme in ("https", "wss")
    path = parts.path.rstrip("/").removesuffix("/v1/listen").removesuffix("/v1")
    rest, stream = (f"{scheme}://{parts.netloc}{path}" for scheme in (("https", "wss") if secure else ("http", "ws")))
    return DeepgramClientEnvironment(base=rest, production=stream, agent=stream, agent_rest=rest)


def check_deepgram(secret: dict) -> VerificationResult:
    """List the key's projects (GET /v1/projects), the cheapest authenticated call."""
    from deepgram import DeepgramClient
    from deepgram.core.api_error import ApiError

    with httpx.Client(timeout=TIMEOUT_SECONDS) as http:
        client = DeepgramClient(
            api_key=secret["api_key"], environment=_deepgram_environment(), httpx_client=http, timeout=TIMEOUT_SECONDS
        )
        try:
            response = client.manage.v1.projects.list(request_options={"max_retries": 0})
        except ApiError as exc:
            return refused(exc.status_code or 0, exc.body)
        except httpx.HTTPError as exc:
            return unreachable("deepgram", exc)
    return VerificationResult(True, f"200 OK: the key lists {len(response.projects or [])} project(s)")


GOTO_NOT_CHECKED = (
    "Not checked: GoTo grants tokens only through a user's consent (authorization code + refresh token), "
    "never for a client id and secret alone, and calls do not use this credential: connect GoTo from the "
    "Phone numbers page instead."
)


def check_gotoconnect(secret: dict) -> VerificationResult:
    """Nothing to ask GoTo: its OAuth server has no client-credentials grant (docs/telephony.md#connecting-goto)."""
    return VerificationResult(None, GOTO_NOT_CHECKED)


async def _livekit_room_count(url: str, api_key: str, api_secret: str) -> int:
    import aiohttp
    from livekit import api

    # failover=False: a verification asks the one server named, not LiveKit Cloud's other regions.
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    client = api.LiveKitAPI(url, api_key, api_secret, timeout=timeout, failover=False)
    try:
        response = await client.room.list_rooms(api.ListRoomsRequest())
    finally:
        await client.aclose()
    return len(response.rooms)


def check_livekit(secret: dict) -> VerificationResult:
    """RoomService.ListRooms on the credential's own server."""
    import aiohttp
    from livekit import api

    problem = public_address_problem(secret["url"])
    if problem:
        return VerificationResult(False, problem)
    try:
        count = async_to_sync(_livekit_room_count)(secret["url"], secret["api_key"], secret["api_secret"])
    except api.TwirpError as exc:
        return refused(exc.status, {"code": exc.code, "msg": exc.message})
    except (TimeoutError, aiohttp.ClientError) as exc:
        return unreachable("livekit", exc)
    return VerificationResult(True, f"200 OK: the key lists {count} room(s)")


def check_twilio(secret: dict) -> VerificationResult:
    """Fetch the account the Account SID names (GET /2010-04-01/Accounts/{sid}.json) with its auth token."""
    import requests
    from twilio.base.exceptions import TwilioRestException

    from integrations import twilio_api

    client = twilio_api.client(secret["account_sid"], secret["auth_token"], timeout=TIMEOUT_SECONDS)
    try:
        account = client.api.v2010.accounts(secret["account_sid"]).fetch()
    except TwilioRestException as exc:
        return refused(exc.status, f"{exc.code}: {exc.msg}")
    except requests.RequestException as exc:
        return unreachable("twilio", exc)
    if account.status != "active":  # a suspended or closed account answers but cannot place or take calls
        return VerificationResult(False, f"200 OK: the account is {account.status}, so it can carry no calls")
    return VerificationResult(True, f"200 OK: the account is {account.status} ({account.type})")


def auth_header(secret: dict) -> tuple[str, str]:
    """The header a generic secret is sent in: `header` is a name, or 'Name: text with <value>'."""
    name, colon, template = secret.get("header", "Authorization: Bearer <value>").partition(":")
    value = template.strip().replace("<value>", secret["value"]) if colon else secret["value"]
    return name.strip(), value


def check_http(secret: dict) -> VerificationResult:
    """GET check_url with the secret in its header; any 2xx accepts it."""
    url = secret.get("check_url")
    if not url:
        return VerificationResult(None, "Not checked: the secret has no check_url.")
    problem = public_address_problem(url)
    if problem:
        return VerificationResult(False, problem)
    name, value = auth_header(secret)
    try:
        response = httpx.get(url, headers={name: value}, timeout=TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        return unreachable("http", exc)
    if response.is_success:
        return VerificationResult(True, f"{response.status_code} {response.reason_phrase}")
    return refused(response.status_code, response.text)


def _json_or_text(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return response.text


CHECKS = {
    "anthropic": check_anthropic,
    "deepgram": check_deepgram,
    "gotoconnect": check_gotoconnect,
    "livekit": check_livekit,
    "twilio": check_twilio,
    "http": check_http,
}
