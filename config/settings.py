"""Settings for the AI Orchestrator, read from the environment only.

Every variable is listed with its default in `.env.example` and the README. A bad value stops
start-up with an ImproperlyConfigured error that names the variable.
"""

import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from actions.names import ACTION_NAMES
from orchestrator import redis_keys

BASE_DIR = Path(__file__).resolve().parent.parent

# An explicit ENV_FILE="" skips the file (the test suite does, so a developer's .env cannot leak
# into it). Variables already in the environment always win over the file.
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    environ.Env.read_env(_env_file, overwrite=False)

env = environ.Env()

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _bool(name: str, default: bool) -> bool:
    """Strict boolean: a typo such as ACTIONS_ENABLED=flase must not silently mean false."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ImproperlyConfigured(f"{name} must be {bounds}, got {value}")
    return value


def _float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= minimum:
        raise ImproperlyConfigured(f"{name} must be a finite number above {minimum}, got {raw!r}")
    return value


def _str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip() or default


def _list(name: str, default: str) -> list[str]:
    raw = os.environ.get(name)
    return [item.strip() for item in (default if raw is None else raw).split(",") if item.strip()]


def _url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = _str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ImproperlyConfigured(f"{name} must be a {' or '.join(schemes)} URL, got {value!r}")
    return value


# --- Core -------------------------------------------------------------------------------------

DEBUG = _bool("DEBUG", False)
SECRET_KEY = _str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105 - DEBUG only

# API key digests are HMAC-SHA256(API_KEY_PEPPER, secret). A separate pepper lets SECRET_KEY be
# rotated without invalidating every issued key.
API_KEY_PEPPER = _str("API_KEY_PEPPER", SECRET_KEY)

ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "orchestrator",
    "actions",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and Swagger UI's static files from the app itself: no CDN, no extra
    # web server, no collectstatic step (found through the apps' finders).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# No collectstatic: WhiteNoise serves straight from the apps (WHITENOISE_USE_FINDERS).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database ---------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool
# Each process holds at most DB_POOL_MAX_SIZE connections, so the bound on PostgreSQL is
# (web processes + worker processes) x DB_POOL_MAX_SIZE; keep it under max_connections.
# Worker threads give their connection back to the pool while they wait for the model.

DATABASE_URL = _url(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/orchestrator", ("postgres", "postgresql")
)
DB_POOL_MAX_SIZE = _int("DB_POOL_MAX_SIZE", 10, minimum=0, maximum=500)
_database = env.db_url_config(DATABASE_URL)
_database["CONN_MAX_AGE"] = 0  # Django's pool requires it; the pool keeps connections open
if DB_POOL_MAX_SIZE:
    _database.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": 10,
    }
DATABASES = {"default": _database}

# --- Redis ------------------------------------------------------------------------------------
# One Redis serves the broker, idempotency keys and (later) rate limits. The runbook tunes
# clients to a 5 s command timeout and 10 pooled connections per process.

REDIS_URL = _url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss"))
REDIS_SOCKET_TIMEOUT_SECONDS = _float("REDIS_SOCKET_TIMEOUT_SECONDS", 5.0)
REDIS_MAX_CONNECTIONS = _int("REDIS_MAX_CONNECTIONS", 10, minimum=1)
IDEMPOTENCY_TTL_SECONDS = _int("IDEMPOTENCY_TTL_SECONDS", 86400, minimum=1, maximum=86400)

# --- Rate limits ------------------------------------------------------------------------------
# A sliding one-minute window per workspace in Redis (orchestrator/rate_limits.py); a workspace's
# own figure (admin, configure_workspace --rate-limit-per-minute) wins. 0 means unlimited.
# Failed authentications are limited per client address, so a key cannot be guessed at speed.
# When Redis is unreachable the limiter fails open, with a warning and a metric.

RATE_LIMIT_PER_MINUTE = _int("RATE_LIMIT_PER_MINUTE", 100, minimum=0, maximum=100_000)
AUTH_FAILURES_PER_MINUTE = _int("AUTH_FAILURES_PER_MINUTE", 20, minimum=1, maximum=100_000)

# --- Webhooks ---------------------------------------------------------------------------------
# https://www.standardwebhooks.com/ - signed events, delivered by a Celery task that retries
# with exponential backoff (from WEBHOOK_RETRY_BACKOFF_SECONDS, doubling, at most 30 min apart)
# for up to WEBHOOK_RETRY_FOR_SECONDS. The two ALLOW switches are for development and tests:
# in production webhooks go over https to public addresses only (the SSRF guard).

WEBHOOK_ALLOW_HTTP = _bool("WEBHOOK_ALLOW_HTTP", False)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = _bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
WEBHOOK_TIMEOUT_SECONDS = _float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
WEBHOOK_RETRY_FOR_SECONDS = _int("WEBHOOK_RETRY_FOR_SECONDS", 86400, minimum=1, maximum=7 * 86400)
WEBHOOK_RETRY_BACKOFF_SECONDS = _int("WEBHOOK_RETRY_BACKOFF_SECONDS", 10, minimum=1, maximum=1800)
# Certificate authorities trusted for https receivers; unset: the public ones (certifi).
WEBHOOK_CA_FILE = _str("WEBHOOK_CA_FILE")
if WEBHOOK_CA_FILE and not Path(WEBHOOK_CA_FILE).is_file():
    raise ImproperlyConfigured(f"WEBHOOK_CA_FILE must name a file, got {WEBHOOK_CA_FILE!r}")

# --- Actions ----------------------------------------------------------------------------------

ACTIONS_ENABLED = _bool("ACTIONS_ENABLED", True)
ALLOW_ACTIONS_DEFAULT = _list("ALLOW_ACTIONS_DEFAULT", ",".join(ACTION_NAMES))
_unknown_actions = sorted(set(ALLOW_ACTIONS_DEFAULT) - set(ACTION_NAMES))
if _unknown_actions:
    raise ImproperlyConfigured(
        f"ALLOW_ACTIONS_DEFAULT names unknown actions {_unknown_actions}; "
        f"known actions are {list(ACTION_NAMES)}"
    )

# --- Model ------------------------------------------------------------------------------------
# Without OPENAI_API_KEY the platform talks to the bundled simulator (`make run` starts it).

AI_MODEL = _str("AI_MODEL", "gpt-4o-mini")
AI_MAX_OUTPUT_TOKENS = _int("AI_MAX_OUTPUT_TOKENS", 800, minimum=1, maximum=128000)
OPENAI_API_KEY = _str("OPENAI_API_KEY")
OPENAI_BASE_URL = _url(
    "OPENAI_BASE_URL",
    "https://api.openai.com/v1" if OPENAI_API_KEY else "http://127.0.0.1:8001/v1",
    ("http", "https"),
)
AI_REQUEST_TIMEOUT_SECONDS = _float("AI_REQUEST_TIMEOUT_SECONDS", 60.0)
AI_MAX_TOOL_ROUNDS = _int("AI_MAX_TOOL_ROUNDS", 3, minimum=0, maximum=10)
AI_MAX_ACTIONS_PER_JOB = _int("AI_MAX_ACTIONS_PER_JOB", 10, minimum=0, maximum=100)

# --- Job lifecycle ----------------------------------------------------------------------------

JOB_MAX_ATTEMPTS = _int("JOB_MAX_ATTEMPTS", 5, minimum=1, maximum=50)
JOB_LEASE_SECONDS = _int("JOB_LEASE_SECONDS", 300, minimum=1)
JOB_REQUEUE_AFTER_SECONDS = _int("JOB_REQUEUE_AFTER_SECONDS", 120, minimum=1)
SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 30, minimum=1)

# The longest a job can legitimately run: one model call per tool round plus the final answer.
LONGEST_JOB_SECONDS = (AI_MAX_TOOL_ROUNDS + 1) * AI_REQUEST_TIMEOUT_SECONDS
if JOB_LEASE_SECONDS <= LONGEST_JOB_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_LEASE_SECONDS ({JOB_LEASE_SECONDS}) must exceed the longest job, "
        f"(AI_MAX_TOOL_ROUNDS + 1) x AI_REQUEST_TIMEOUT_SECONDS = {LONGEST_JOB_SECONDS:g}"
    )

# --- Celery -----------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# At-least-once delivery: a message is acknowledged only after the task ends, and redelivered if
# the worker dies. Redis redelivers an unacknowledged message after the visibility timeout, so
# it must exceed the longest job or a healthy job would be delivered twice.

BROKER_VISIBILITY_TIMEOUT_SECONDS = _int("BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600, minimum=1)
if BROKER_VISIBILITY_TIMEOUT_SECONDS <= JOB_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"BROKER_VISIBILITY_TIMEOUT_SECONDS ({BROKER_VISIBILITY_TIMEOUT_SECONDS}) must exceed "
        f"JOB_LEASE_SECONDS ({JOB_LEASE_SECONDS}), or running jobs would be redelivered"
    )

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_POOL_LIMIT = REDIS_MAX_CONNECTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_SOCKET_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "max_connections": REDIS_MAX_CONNECTIONS,
}
CELERY_TASK_DEFAULT_QUEUE = redis_keys.JOB_QUEUE
# Declared queues are the ones a worker consumes by default: jobs and webhook deliveries.
CELERY_TASK_QUEUES = (Queue(redis_keys.JOB_QUEUE), Queue(redis_keys.WEBHOOK_QUEUE))
CELERY_TASK_ROUTES = {"orchestrator.tasks.deliver_webhook": {"queue": redis_keys.WEBHOOK_QUEUE}}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A dead broker must not hold an API request for long: the sweeper republishes what never left.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# Model calls are seconds of waiting on the network: threads, not processes, keep a hundred or
# more in flight per core (measured in DESIGN.md). Run about one worker process per core.
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_CONCURRENCY = _int("WORKER_CONCURRENCY", 128, minimum=1, maximum=1024)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {
        "task": "orchestrator.tasks.requeue_stale_jobs",
        "schedule": float(SWEEP_INTERVAL_SECONDS),
    },
}

# --- API --------------------------------------------------------------------------------------

# DRF's JSON parser reads request.body, so Django enforces this bound on the declared length
# before reading anything; the API answers 413.
MAX_REQUEST_BODY_BYTES = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orchestrator.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orchestrator.api.permissions.HasRequiredScopes"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "orchestrator.api.errors.handle_exception",
    "UNAUTHENTICATED_USER": None,
    # No OPTIONS metadata: every method a view serves must declare its scopes.
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_SCHEMA_CLASS": "orchestrator.api.schema.ScopedAutoSchema",
}

# https://drf-spectacular.readthedocs.io/en/latest/settings.html
# The schema (/api/schema/) and Swagger UI (/api/docs/) are public; the UI's files come from
# drf-spectacular-sidecar, served by the app (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Orchestrator API",
    "DESCRIPTION": (BASE_DIR / "orchestrator" / "api" / "description.md").read_text(),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"JobStatus": "orchestrator.models.Job.Status"},
}

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = _str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be a logging level name, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The HTTP clients log request URLs and headers at DEBUG; keep credentials out of the logs.
    "loggers": {
        # Django's own console handler would print every record a second time via the root.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}
