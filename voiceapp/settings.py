"""Settings for the Voice AI platform.

Configured by the environment alone (django-environ, `voiceapp.environment`); the carriers' settings are in
`voiceapp.settings_carriers`, imported here whole. With no environment at all it
runs on embedded defaults: SQLite, the in-memory channel layer, the local-memory cache and Celery
tasks run in-process. Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG=0 and the provider
settings; every variable is listed in the configuration table of docs/operations.md.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from voiceapp.environment import BASE_DIR, env, env_secret

# --- Core -------------------------------------------------------------------------------------

DEV_SECRET_KEY = "dev-insecure-embedded-default-do-not-use-in-production"  # noqa: S105 (refused when DEBUG is off)
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env_secret("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SERVICE_NAME = env.str("SERVICE_NAME", default="voiceapp")

if not DEBUG:
    # Refuse to start in production on a development default: it would be silently insecure.
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DEBUG is off but SECRET_KEY is missing, the embedded development default, or shorter "
            "than 50 characters. Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DEBUG is off: set ALLOWED_HOSTS to the host names this platform serves.")
    if not env_secret("INTEGRATION_CRYPTO_KEY"):
        raise ImproperlyConfigured(
            "DEBUG is off: set INTEGRATION_CRYPTO_KEY (the credential vault's AES-256 keys), e.g. "
            "`python manage.py generate_crypto_key`."
        )

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "core",
    "voiceapp",
    "tenants",
    "agents",
    "telephony",
    "calls",
    "voice",
    "billing",
    "integrations",
    "voiceapp.demo_backend",  # DEMO ONLY: the demo tenant's backend, answering only with DEBUG on
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "voiceapp.urls"
WSGI_APPLICATION = "voiceapp.wsgi.application"
ASGI_APPLICATION = "voiceapp.asgi.application"
AUTH_USER_MODEL = "tenants.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "voiceapp.web.context_processors.dashboard",
            ],
        },
    },
]

# --- Data stores ------------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded database is shared by the processes `make run` starts together (the web server,
    # run_outbox, simulate_call). SQLite's default transactions start as readers and fail at once
    # ("database is locked", whatever the timeout) when they later need to write while another
    # connection writes; IMMEDIATE takes the write lock at BEGIN, where the busy timeout waits for it.
    # WAL lets readers go on while one connection writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=20),
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNEL_LAYER_PREFIX", default="voiceapp")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "voiceapp"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery -----------------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# No broker on embedded defaults: tasks run in-process when they are enqueued.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "integrations.tasks.*": {"queue": "webhooks"},
    "webhooks.*": {"queue": "webhooks"},
    "billing.tasks.generate_daily_report": {"queue": "reports"},
}
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Tasks that others depend on ack late (after they ran) and are idempotent; a task whose worker process
# dies is re-queued at once (reject_on_worker_lost). When the whole worker dies, Redis hands its unacked
# messages out again after this visibility timeout: longer than any task may run (the hard time limit)
# and than any countdown (none is used: retries are scheduled on rows, and sweeps re-queue lost work),
# and much shorter than Redis's default hour. The sweeps (dials, webhooks, post-call) act sooner anyway.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=900)}
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT_SECONDS must be longer than CELERY_TASK_TIME_LIMIT, or Redis hands a running "
        "task to a second worker."
    )
# Celery's Django fixup would close the database connection around every task (a new connection, ~10 ms,
# per webhook delivery); keep them, and close broken or CONN_MAX_AGE-old ones after each task instead
# (voiceapp.celery), as Django does around requests.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Retries for webhook deliveries and other transient work (docs/webhooks.md#retries-disabling-replay).
WORKER_RETRY = {
    "max_retries": env.int("WORKER_RETRY_MAX_RETRIES", default=5),
    "backoff_base_seconds": env.int("WORKER_RETRY_BACKOFF_BASE", default=60),
    "backoff_max_seconds": env.int("WORKER_RETRY_BACKOFF_MAX", default=3600),
}
# Celery's rate limit of the webhook delivery task per worker (e.g. "100/m"); empty = none,
# because a worker-wide limit caps every tenant together (the issue asks for 200 deliveries/s per process).
WEBHOOK_QUEUE_RATE_LIMIT = env.str("WEBHOOK_QUEUE_RATE_LIMIT", default="")

# --- Webhooks (Standard Webhooks) and the outbox ------------------------------------------------
# A response slower than this counts as a failed attempt.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# How long a rotated-out signing secret keeps signing beside the new one.
WEBHOOK_SECRET_OVERLAP_HOURS = env.int("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)
# An endpoint whose deliveries keep failing this long is disabled and its tenant told.
WEBHOOK_DISABLE_AFTER_HOURS = env.int("WEBHOOK_DISABLE_AFTER_HOURS", default=24)
# A queued delivery not attempted within this time is queued again by the sweeper (lost message, dead worker).
WEBHOOK_DISPATCH_LEASE_SECONDS = env.int("WEBHOOK_DISPATCH_LEASE_SECONDS", default=120)
WEBHOOK_REQUIRE_HTTPS = env.bool("WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)
# A delivery task also takes up to this many - 1 other deliveries that wait, and sends them together.
WEBHOOK_DELIVERY_BATCH = env.int("WEBHOOK_DELIVERY_BATCH", default=20)
# Each endpoint's circuit breaker: this many failures in a row open it; it lets a trial through after the timeout.
WEBHOOK_BREAKER_THRESHOLD = env.int("WEBHOOK_BREAKER_THRESHOLD", default=5)
WEBHOOK_BREAKER_TIMEOUT_SECONDS = env.float("WEBHOOK_BREAKER_TIMEOUT_SECONDS", default=30.0)
EMAIL_CONFIG = environ.Env.email_url_config(env_secret("EMAIL_URL", default="consolemail://"))
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Voice by aiConnected <noreply@localhost>")

# --- Retention (docs/billing.md#retention): what the daily `apply_retention` job deletes, in days
RETENTION_DAYS = {
    "calls": env.int("RETENTION_CALLS_DAYS", default=7 * 365),  # call records, transcripts, events, tool calls
    "recordings": env.int("RETENTION_RECORDINGS_DAYS", default=365),
    "usage": env.int("RETENTION_USAGE_DAYS", default=7 * 365),
    "audit": env.int("RETENTION_AUDIT_DAYS", default=7 * 365),
    "webhook_deliveries": env.int("RETENTION_WEBHOOK_DELIVERIES_DAYS", default=90),
}

# --- Internationalisation, static, media ------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [d for d in [BASE_DIR / "static"] if d.is_dir()]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security ---------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Messages live server-side: a one-time API key secret must never ride in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers and Kubernetes probe these over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST framework ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiKeyAuthentication",
        "tenants.api.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.api.permissions.HasTenantScope"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.Pagination",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictJSONParser"],
    "DEFAULT_METADATA_CLASS": "core.api.metadata.SchemaPointerMetadata",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
    # ASCII JSON (\uXXXX escapes): a lone surrogate echoed from bad input still renders as valid JSON.
    "UNICODE_JSON": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Voice by aiConnected API",
    "DESCRIPTION": (
        "Create AI voice agents, route phone numbers to them, start and follow calls, and read usage. "
        "Authenticate with an API key in the X-API-Key header. Errors share one shape: "
        '{"error": {"type", "code", "message", "fields"}}. POSTs accept an Idempotency-Key header.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.docs.strict_request_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CallStatusEnum": "calls.state_machine.CallStatus",
        "AgentStatusEnum": "agents.models.Agent.Status",
        "NumberStatusEnum": "telephony.models.PhoneNumber.Status",
        "ToolCallStatusEnum": "calls.models.ToolCall.Status",
        "VoiceProviderEnum": "agents.models.Voice.Provider",
        "NumberProviderEnum": "telephony.models.PhoneNumber.Provider",
        "CredentialProviderEnum": "integrations.models.ProviderCredential.Provider",
    },
    "SERVE_AUTHENTICATION": None,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# --- REST API: header and default per-tenant rate limits (plans override) ---------------------

API_KEY_HEADER = "X-API-Key"
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=100)
API_BURST_LIMIT = env.int("API_BURST_LIMIT", default=20)

# --- Credential vault (docs/integrations.md#credential-vault) ----------------------------------
# Comma-separated `<key id>:<base64 of 32 random bytes>`, newest first: the first key encrypts, any
# listed key decrypts. Empty on embedded defaults: a development key derived from SECRET_KEY is used.
INTEGRATION_CRYPTO_KEY = env_secret("INTEGRATION_CRYPTO_KEY")
# Tenants' URLs (tools, webhooks, backends, credential checks) may point at private, loopback or
# link-local addresses only when this is on: keep it off in production unless backends are internal.
INTEGRATION_ALLOW_PRIVATE_NETWORKS = env.bool("INTEGRATION_ALLOW_PRIVATE_NETWORKS", default=DEBUG)

# --- Providers, calls and the voice pipeline (docs/operations.md#configuration) ---------------
# Keys left empty select the offline engines (docs/voice-pipeline.md#providers).

DEEPGRAM_API_KEY = env_secret("DEEPGRAM_API_KEY")
DEEPGRAM_BASE_URL = env.str("DEEPGRAM_BASE_URL", default="")
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
# An OpenAI-compatible endpoint (llama.cpp, Ollama, vLLM run by the operator) for local or other models.
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")
OPENAI_API_KEY = env_secret("OPENAI_API_KEY")
CHATTERBOX_URL = env.str("CHATTERBOX_URL", default="")
CHATTERBOX_API_TOKEN = env_secret("CHATTERBOX_API_TOKEN")
LIVEKIT_URL = env.str("LIVEKIT_URL", default="")
LIVEKIT_API_KEY = env_secret("LIVEKIT_API_KEY")
LIVEKIT_API_SECRET = env_secret("LIVEKIT_API_SECRET")
# The bridge's media and a call's timeouts.
BRIDGE_AUDIO = {
    "input_sample_rate": 48000,
    "output_sample_rate": 48000,
    "channels": 1,
    "frame_duration_ms": 20,
    "codec": "opus",
}
CALL_SETUP_TIMEOUT_SECONDS = env.int("CALL_SETUP_TIMEOUT_SECONDS", default=30)
CALL_IDLE_TIMEOUT_SECONDS = env.int("CALL_IDLE_TIMEOUT_SECONDS", default=300)
CALL_MAX_DURATION_SECONDS = env.int("CALL_MAX_DURATION_SECONDS", default=3600)
# An accepted outbound call whose dial task is lost (broker down, worker killed) is queued again by the
# minute sweep once this lease has passed; one not dialled within the deadline ends `setup_timeout`.
CALL_DIAL_LEASE_SECONDS = env.int("CALL_DIAL_LEASE_SECONDS", default=30)
CALL_DIAL_DEADLINE_SECONDS = env.int("CALL_DIAL_DEADLINE_SECONDS", default=300)
# A connected call the carrier says is over is ended by its bridge; one still open this long after (its media
# process died) is ended by the stuck-call sweep, at the carrier's time.
CALL_CARRIER_END_GRACE_SECONDS = env.int("CALL_CARRIER_END_GRACE_SECONDS", default=60)

# Recording: both legs mixed into one mono WAV per call, saved through the default storage, deleted after
# RETENTION_RECORDINGS_DAYS.
CALL_RECORDING_ENABLED = env.bool("CALL_RECORDING_ENABLED", default=True)
CALL_RECORDING_SAMPLE_RATE = env.int("CALL_RECORDING_SAMPLE_RATE", default=16000)

# Carriers (GoTo Connect, Twilio), the bridge's WebRTC legs and answering-machine detection.
from voiceapp.settings_carriers import *  # noqa: E402, F403

# The voice pipeline's platform defaults; an agent's `settings` overrides any key.
# A model left empty is the chosen engine's default model, declared in the engine registry (agents/engines.py).
VOICE_PIPELINE_DEFAULTS = {
    "stt": {
        "provider": env.str("STT_PROVIDER", default="deepgram" if DEEPGRAM_API_KEY else "offline"),
        "model": env.str("STT_MODEL", default=""),
        "language": env.str("STT_LANGUAGE", default="en-US"),
        "interim_results": True,
        "punctuate": True,
        "smart_format": True,
    },
    "llm": {
        "provider": env.str("LLM_PROVIDER", default="anthropic" if ANTHROPIC_API_KEY else "offline"),
        "model": env.str("LLM_MODEL", default=""),
        # Claude, then this model (Haiku), then the local responder; empty: straight to the responder.
        "fallback_model": env.str("LLM_FALLBACK_MODEL", default="claude-haiku-4-5"),
        "temperature": env.float("LLM_TEMPERATURE", default=0.7),
        "max_tokens": env.int("LLM_MAX_TOKENS", default=1024),
        "streaming": True,
    },
    "tts": {
        "provider": env.str("TTS_PROVIDER", default="chatterbox" if CHATTERBOX_URL else "offline"),
        "model": env.str("TTS_MODEL", default=""),
        "default_voice_id": env.str("TTS_DEFAULT_VOICE_ID", default="default_female_1"),
        "exaggeration": env.float("TTS_DEFAULT_EXAGGERATION", default=0.5),
        "cfg_weight": env.float("TTS_DEFAULT_CFG_WEIGHT", default=0.5),
    },
    "vad": {
        "model": "silero",
        "threshold": env.float("VAD_THRESHOLD", default=0.5),
        "min_speech_duration_ms": env.int("VAD_MIN_SPEECH_DURATION_MS", default=250),
        "min_silence_duration_ms": env.int("VAD_MIN_SILENCE_DURATION_MS", default=300),
    },
    "conversation": {
        "max_history_tokens": env.int("CONVERSATION_MAX_HISTORY_TOKENS", default=8000),
        "summarize_after_turns": env.int("CONVERSATION_SUMMARIZE_AFTER_TURNS", default=20),
        "greeting_enabled": True,
        "transfer_enabled": True,
    },
    "tools": {
        "webhook_timeout_seconds": env.int("TOOLS_WEBHOOK_TIMEOUT_SECONDS", default=10),
        "max_concurrent_tools": env.int("TOOLS_MAX_CONCURRENT", default=3),
    },
}


# Live call state in the cache (Redis in production), kept this long after the call.
CALL_STATE_TTL_SECONDS = env.int("CALL_STATE_TTL_SECONDS", default=3600)

# --- Observability (docs/operations.md#observability) -----------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")  # "json" or "text"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s tenant=%(tenant_id)s "
            "call=%(call_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
PROMETHEUS_METRIC_NAMESPACE = ""

# --- Dashboard --------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "web:overview"
LOGOUT_REDIRECT_URL = "login"
