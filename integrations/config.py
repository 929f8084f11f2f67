"""Backend service configuration in the `integration.services` format (docs/integrations.md#backend-services), parsed and validated.

One parser serves the database rows (BackendService), the API, the admin and the YAML import, and
reports every error with its path (e.g. `services.ticketing.retry.max_backoff`).
"""

import re
from dataclasses import dataclass, field

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*\Z")
SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NEVER_RETRIED = frozenset({400, 401, 403, 404, 409})
DEFAULT_REDACT = ("password", "ssn", "credit_card")


class ConfigError(ValueError):
    """Every problem found, as (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))

    def as_fields(self) -> dict[str, list[str]]:
        fields: dict[str, list[str]] = {}
        for path, message in self.errors:
            fields.setdefault(path, []).append(message)
        return fields


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # including the first
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    retryable_codes: frozenset[int] = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RateLimitPolicy:
    requests_per_second: float | None = None  # None: unlimited
    burst: int = 10
    per_call_rps: float | None = None
    queue_depth: int = 100


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    timeout: float = 30.0
    half_open_requests: int = 3
    success_threshold: int = 3


@dataclass(frozen=True)
class TLSConfig:
    cert: str = ""
    key: str = ""
    ca: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.ca)


@dataclass(frozen=True)
class AuthConfig:
    type: str = ""  # "", "api_key", "bearer", "oauth2"
    header: str = "X-API-Key"
    value: str = ""  # the key or token (api_key, bearer), usually a ${SECRET} reference
    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoggingPolicy:
    include_payload: bool = False
    include_headers: bool = False
    redact: tuple[str, ...] = DEFAULT_REDACT


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    retry: RetryPolicy = RetryPolicy()
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    circuit_breaker: BreakerPolicy = BreakerPolicy()
    tls: TLSConfig = TLSConfig()
    auth: AuthConfig = AuthConfig()
    logging: LoggingPolicy = LoggingPolicy()

    def secret_names(self) -> set[str]:
        """Names of the vault secrets this service refers to."""
        texts = [
            *self.headers.values(),
            self.tls.cert,
            self.tls.key,
            self.tls.ca,
            self.auth.value,
            self.auth.client_id,
            self.auth.client_secret,
        ]
        return {match.group(1) for text in texts for match in SECRET_REF.finditer(text)}


@dataclass(frozen=True)
class Defaults:
    timeout: float = 5.0
    max_retries: int = 3


def parse_duration(value, path: str, errors: list) -> float | None:
    """'100ms', '5s', '1m' or a number of seconds."""
    if isinstance(value, bool):
        errors.append((path, "must be a duration like 100ms, 5s or 1m"))
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = DURATION.match(str(value))
        if not match:
            errors.append((path, f"{value!r} is not a duration like 100ms, 5s or 1m"))
            return None
        seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    if seconds <= 0:
        errors.append((path, "must be greater than zero"))
        return None
    return seconds


class _Reader:
    """Reads one mapping, collecting errors with their paths instead of stopping at the first."""

    def __init__(self, data, path: str, errors: list, known: set[str]):
        self.path, self.errors = path, errors
        if data is None:
            data = {}
        if not isinstance(data, dict):
            errors.append((path, "must be a mapping"))
            data = {}
        for key in sorted(set(data) - known):
            errors.append((f"{path}.{key}", "unknown setting"))
        self.data = data

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}"

    def number(self, key, default, *, integer=False, minimum=None, maximum=None):
        value = self.data.get(key, default)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.errors.append((self.sub(key), f"must be {'an integer' if integer else 'a number'}"))
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.errors.append((self.sub(key), f"must be between {minimum} and {maximum}"))
            return default
        return value

    def duration(self, key, default):
        return parse_duration(self.data[key], self.sub(key), self.errors) or default if key in self.data else default

    def text(self, key, default=""):
        value = self.data.get(key, default)
        if not isinstance(value, str):
            self.errors.append((self.sub(key), "must be a string"))
            return default
        return value

    def boolean(self, key, default):
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.errors.append((self.sub(key), "must be true or false"))
            return default
        return value

    def strings(self, key, default=()):
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors.append((self.sub(key), "must be a list of strings"))
            return tuple(default)
        return tuple(value)


def _retry(data, path, errors, defaults: Defaults) -> RetryPolicy:
    r = _Reader(
        data,
        path,
        errors,
        {"max_attempts", "initial_backoff", "max_backoff", "backoff_multiplier", "retryable_http_codes"},
    )
    codes = r.data.get("retryable_http_codes", sorted(RetryPolicy.retryable_codes))
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        errors.append((r.sub("retryable_http_codes"), "must be a list of HTTP status codes"))
        codes = sorted(RetryPolicy.retryable_codes)
    forbidden = sorted(c for c in codes if c in NEVER_RETRIED or (400 <= c < 500 and c != 429) or not 400 <= c <= 599)
    if forbidden:
        errors.append((r.sub("retryable_http_codes"), f"{forbidden} may not be retried (only 429 and 5xx)"))
    policy = RetryPolicy(
        max_attempts=r.number("max_attempts", defaults.max_retries, integer=True, minimum=1, maximum=10),
        initial_backoff=r.duration("initial_backoff", RetryPolicy.initial_backoff),
        max_backoff=r.duration("max_backoff", RetryPolicy.max_backoff),
        multiplier=r.number("backoff_multiplier", RetryPolicy.multiplier, minimum=1, maximum=10),
        retryable_codes=frozenset(c for c in codes if c not in forbidden),
    )
    if policy.max_backoff < policy.initial_backoff:
        errors.append((r.sub("max_backoff"), "must not be shorter than initial_backoff"))
    return policy


def _rate_limit(data, path, errors) -> RateLimitPolicy:
    r = _Reader(data, path, errors, {"requests_per_second", "burst", "per_call_rps", "queue_depth"})
    return RateLimitPolicy(
        requests_per_second=r.number("requests_per_second", None, minimum=0.001, maximum=100_000),
        burst=r.number("burst", RateLimitPolicy.burst, integer=True, minimum=1, maximum=100_000),
        per_call_rps=r.number("per_call_rps", None, minimum=0.001, maximum=100_000),
        queue_depth=r.number("queue_depth", RateLimitPolicy.queue_depth, integer=True, minimum=0, maximum=100_000),
    )


def _breaker(data, path, errors) -> BreakerPolicy:
    r = _Reader(data, path, errors, {"threshold", "timeout", "half_open_requests", "success_threshold"})
    return BreakerPolicy(
        threshold=r.number("threshold", BreakerPolicy.threshold, integer=True, minimum=1, maximum=1000),
        timeout=r.duration("timeout", BreakerPolicy.timeout),
        half_open_requests=r.number(
            "half_open_requests", BreakerPolicy.half_open_requests, integer=True, minimum=1, maximum=1000
        ),
        success_threshold=r.number(
            "success_threshold", BreakerPolicy.success_threshold, integer=True, minimum=1, maximum=1000
        ),
    )


def _auth(data, path, errors) -> AuthConfig:
    r = _Reader(
        data, path, errors, {"type", "header", "value", "token", "token_url", "client_id", "client_secret", "scopes"}
    )
    kind = r.text("type")
    if kind not in ("", "api_key", "bearer", "oauth2"):
        errors.append((r.sub("type"), "must be api_key, bearer or oauth2"))
    auth = AuthConfig(
        type=kind,
        header=r.text("header", AuthConfig.header),
        value=r.text("value") or r.text("token"),
        token_url=r.text("token_url"),
        client_id=r.text("client_id"),
        client_secret=r.text("client_secret"),
        scopes=r.strings("scopes"),
    )
    if kind == "oauth2":
        for key in ("token_url", "client_id", "client_secret"):
            if not getattr(auth, key):
                errors.append((r.sub(key), "is required for oauth2"))
        if auth.token_url and not auth.token_url.startswith(("https://", "http://")):
            errors.append((r.sub("token_url"), "must be an http(s) URL"))
    if kind in ("api_key", "bearer") and not auth.value:
        errors.append((r.sub("value"), f"is required for {kind}"))
    return auth


def parse_service(name: str, data, *, path: str | None = None, defaults: Defaults = Defaults()) -> ServiceConfig:
    """Validate one service definition; raise ConfigError listing every problem."""
    errors: list[tuple[str, str]] = []
    path = path or name
    known = {
        "type",
        "url",
        "method",
        "headers",
        "timeout",
        "retry",
        "rate_limit",
        "circuit_breaker",
        "tls",
        "auth",
        "logging",
    }
    r = _Reader(data, path, errors, known)
    if r.data.get("type", "http") != "http":
        errors.append((r.sub("type"), "only http services are supported"))
    url = r.text("url")
    if not url.startswith(("https://", "http://")):
        errors.append((r.sub("url"), "is required and must be an http(s) URL"))
    method = r.text("method", "POST").upper()
    if method not in METHODS:
        errors.append((r.sub("method"), f"must be one of {', '.join(METHODS)}"))
    headers = r.data.get("headers", {}) or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        errors.append((r.sub("headers"), "must map header names to strings"))
        headers = {}
    tls = _Reader(r.data.get("tls"), r.sub("tls"), errors, {"cert", "key", "ca"})
    log = _Reader(r.data.get("logging"), r.sub("logging"), errors, {"include_payload", "include_headers", "redact"})
    config = ServiceConfig(
        name=name,
        url=url,
        method=method,
        headers=dict(headers),
        timeout=r.duration("timeout", defaults.timeout),
        retry=_retry(r.data.get("retry"), r.sub("retry"), errors, defaults),
        rate_limit=_rate_limit(r.data.get("rate_limit"), r.sub("rate_limit"), errors),
        circuit_breaker=_breaker(r.data.get("circuit_breaker"), r.sub("circuit_breaker"), errors),
        tls=TLSConfig(cert=tls.text("cert"), key=tls.text("key"), ca=tls.text("ca")),
        auth=_auth(r.data.get("auth"), r.sub("auth"), errors),
        logging=LoggingPolicy(
            include_payload=log.boolean("include_payload", False),
            include_headers=log.boolean("include_headers", False),
            redact=log.strings("redact", DEFAULT_REDACT),
        ),
    )
    if bool(config.tls.cert) != bool(config.tls.key):
        errors.append((r.sub("tls"), "cert and key go together"))
    if errors:
        raise ConfigError(errors)
    return config


def parse_integration(document) -> tuple[Defaults, dict[str, ServiceConfig]]:
    """Parse a whole `integration:` block (a loaded YAML document)."""
    errors: list[tuple[str, str]] = []
    root = _Reader(document, "<document>", errors, {"integration"})
    block = _Reader(
        root.data.get("integration"),
        "integration",
        errors,
        {"api_port", "http_port", "default_timeout", "max_retries", "services", "logging"},
    )
    defaults = Defaults(
        timeout=block.duration("default_timeout", Defaults.timeout),
        max_retries=block.number("max_retries", Defaults.max_retries, integer=True, minimum=1, maximum=10),
    )
    services_data = block.data.get("services") or {}
    if not isinstance(services_data, dict):
        errors.append(("integration.services", "must be a mapping of service names"))
        services_data = {}
    services: dict[str, ServiceConfig] = {}
    for name, data in services_data.items():
        path = f"integration.services.{name}"
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,99}\Z", str(name)):
            errors.append((path, "service names use lowercase letters, digits, '_' and '-'"))
            continue
        try:
            services[name] = parse_service(name, data, path=path, defaults=defaults)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)
    return defaults, services


def service_from_row(row) -> ServiceConfig:
    """The ServiceConfig of a BackendService row."""
    data = {
        "url": row.url,
        "method": row.method,
        "headers": row.headers,
        "timeout": row.timeout_seconds,
        "retry": row.retry,
        "rate_limit": row.rate_limit,
        "circuit_breaker": row.circuit_breaker,
        "tls": row.tls,
        "auth": row.auth,
        "logging": row.logging,
    }
    return parse_service(row.name, data)
