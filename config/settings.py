"""Settings for the AI Orchestrator, read from the environment only.

Every variable is listed with its default in `.env.example` and the README. A bad value stops
start-up with an ImproperlyConfigured error that names the variable.
"""

import base64
import binascii
import hashlib
import ipaddress
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from core import redis_keys
from core.action_names import ACTION_NAMES

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


def _networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in _list(name, ""):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks (CIDR), got {item!r}"
            ) from None
    return tuple(networks)


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
# How long a web process may use a key it authenticated without reading its row again; 0 reads it
# on every request. Changes reach every process at once through Redis; this bounds them only
# when Redis missed a change.
API_KEY_CACHE_SECONDS = _int("API_KEY_CACHE_SECONDS", 30, minimum=0, maximum=3600)

ALLOWED_HOSTS = _list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# The reverse proxies in front of the web (load balancer, ingress), as addresses or networks.
# A request arriving from one is counted under the client address it appends to
# X-Forwarded-For by the per-address limits (core/client_address.py). Empty: REMOTE_ADDR is the
# client and X-Forwarded-For is ignored, since any client can write it.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")

INSTALLED_APPS = [
    # Django's admin with the project's site: its login is throttled (orchestrator/admin_site.py).
    "orchestrator.admin_app.OrchestratorAdminConfig",
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
    # https://github.com/korfuri/django-prometheus: the django_http_* series by view, status and
    # method. Before, first, and after, last, so that its latency covers every middleware.
    # Not in INSTALLED_APPS: its app only starts a separate exporter port or exports migrations
    # at start-up, and /metrics serves every series (core/metrics.py).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First of ours, so the request id and the metrics cover everything below, errors included.
    "core.middleware.RequestContextMiddleware",
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
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
# Times in pages to the second with the zone (core/formats/en/formats.py).
FORMAT_MODULE_PATH = ["core.formats"]
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
# Django's PostgreSQL backend counted by django-prometheus (django_db_* series): it wraps the
# cursor class psycopg is given, so the pool's connections are counted too. With the pool,
# django_db_new_connections_total counts checkouts from the pool, not new server connections.
_database["ENGINE"] = "django_prometheus.db.backends.postgresql"
_database["CONN_MAX_AGE"] = 0  # Django's pool requires it; the pool keeps connections open
# How long a process waits for a connection before the query fails. An API request must not
# hold a web worker while PostgreSQL is away: it waits WEB_DB_POOL_TIMEOUT_SECONDS, then answers
# a JSON 503 (core/middleware.py). Workers, beat and commands wait DB_POOL_TIMEOUT_SECONDS: a
# worker's many threads share its pool, and a busy moment must not read as an outage. The web
# role is set by config/gunicorn.py. The connect timeout bounds each new connection (libpq
# counts at least 2 s), so an unreachable host does not stall the pool's reconnection.
DB_POOL_TIMEOUT_SECONDS = _float("DB_POOL_TIMEOUT_SECONDS", 10.0)
WEB_DB_POOL_TIMEOUT_SECONDS = _float("WEB_DB_POOL_TIMEOUT_SECONDS", 1.0)
DB_CONNECT_TIMEOUT_SECONDS = _int("DB_CONNECT_TIMEOUT_SECONDS", 3, minimum=2, maximum=300)
WEB_PROCESS = os.environ.get("ORCHESTRATOR_WEB_PROCESS") == "1"
_database.setdefault("OPTIONS", {})["connect_timeout"] = DB_CONNECT_TIMEOUT_SECONDS
# Outside the web, the pool checks a connection (one empty round trip) before handing it out:
# after PostgreSQL restarts, a worker would otherwise store a job's result on a dead connection
# and have to hand the job back. A web request on a dead connection answers 503 once and the
# pool drops it; the request path keeps its round trip.
_database["CONN_HEALTH_CHECKS"] = not WEB_PROCESS
if DB_POOL_MAX_SIZE:
    _database["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": WEB_DB_POOL_TIMEOUT_SECONDS if WEB_PROCESS else DB_POOL_TIMEOUT_SECONDS,
    }
# https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
# On by default: parameters are bound on the server, and psycopg prepares a statement once it
# has run five times on a connection (prepare_threshold, psycopg's connect parameter, which
# Django passes through OPTIONS). The pool keeps connections, so PostgreSQL parses and plans a
# job's claim and finish once per connection rather than once per job. Off (false) behind
# PgBouncer in transaction mode before 1.21, which cannot keep prepared statements.
DB_PREPARED_STATEMENTS = _bool("DB_PREPARED_STATEMENTS", True)
if DB_PREPARED_STATEMENTS:
    _database.setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DATABASES = {"default": _database}

# --- Redis ------------------------------------------------------------------------------------
# One Redis serves the broker, idempotency keys and rate limits. The runbook tunes
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

# --- Admin login ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#session-cookie-secure
# Outside development the admin's session and CSRF cookies go over HTTPS only. Failed admin
# logins are limited per client address and per username (orchestrator/login_throttle.py):
# after ADMIN_LOGIN_MAX_FAILURES within ADMIN_LOGIN_WINDOW_SECONDS, attempts are refused (429)
# until the oldest failure ages out. Like the API's limiter it fails open when Redis is down.

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
ADMIN_LOGIN_MAX_FAILURES = _int("ADMIN_LOGIN_MAX_FAILURES", 5, minimum=1, maximum=1000)
ADMIN_LOGIN_WINDOW_SECONDS = _int("ADMIN_LOGIN_WINDOW_SECONDS", 900, minimum=1, maximum=86400)

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

# Approval and execution of actions. An approval left undecided expires; an `executing` row
# whose connector call started longer than the lease ago lost its worker and becomes `unknown`
# (never resent). The lease must exceed the longest connector call, retries included.
ACTION_APPROVAL_TTL_SECONDS = _int("ACTION_APPROVAL_TTL_SECONDS", 86400, minimum=1)
ACTION_LEASE_SECONDS = _int("ACTION_LEASE_SECONDS", 600, minimum=1)

# --- Connectors (Gmail API, Microsoft Graph) ---------------------------------------------------
# https://developers.google.com/gmail/api/reference/rest/v1/users.messages/send
# https://learn.microsoft.com/graph/api/user-sendmail
# `sandbox` records exactly what would be sent and sends nothing (make run); production sets
# `live`. Base URLs default to the real services; tests point them at tests/fakes/.

ACTIONS_BACKEND = _str("ACTIONS_BACKEND", "sandbox")
if ACTIONS_BACKEND not in {"sandbox", "live"}:
    raise ImproperlyConfigured(f"ACTIONS_BACKEND must be sandbox or live, got {ACTIONS_BACKEND!r}")
GMAIL_API_BASE_URL = _url("GMAIL_API_BASE_URL", "https://gmail.googleapis.com", ("http", "https"))
GRAPH_API_BASE_URL = _url("GRAPH_API_BASE_URL", "https://graph.microsoft.com", ("http", "https"))
GOOGLE_TOKEN_URL = _url(
    "GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", ("http", "https")
)
MICROSOFT_TOKEN_URL = _url(
    "MICROSOFT_TOKEN_URL",
    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    ("http", "https"),
)
GOOGLE_CLIENT_ID = _str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = _str("GOOGLE_CLIENT_SECRET")
MICROSOFT_CLIENT_ID = _str("MICROSOFT_CLIENT_ID")
MICROSOFT_CLIENT_SECRET = _str("MICROSOFT_CLIENT_SECRET")
# One outbound HTTP client for every provider call; no transport-level retries for sends: the
# connector decides what may be retried (nothing after the provider may have accepted).
OUTBOUND_CONNECT_TIMEOUT_SECONDS = _float("OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5.0)
OUTBOUND_READ_TIMEOUT_SECONDS = _float("OUTBOUND_READ_TIMEOUT_SECONDS", 30.0)
SEND_MAX_RETRIES = _int("SEND_MAX_RETRIES", 3, minimum=0, maximum=10)
SEND_RETRY_MAX_WAIT_SECONDS = _float("SEND_RETRY_MAX_WAIT_SECONDS", 30.0)
_longest_call = (SEND_MAX_RETRIES + 2) * (
    OUTBOUND_CONNECT_TIMEOUT_SECONDS + OUTBOUND_READ_TIMEOUT_SECONDS + SEND_RETRY_MAX_WAIT_SECONDS
)
if ACTIONS_BACKEND == "live" and _longest_call >= ACTION_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"ACTION_LEASE_SECONDS ({ACTION_LEASE_SECONDS}) must exceed the longest connector call "
        f"(retries, a token refresh and their waits included): {_longest_call:g}"
    )

# Connection tokens are encrypted at rest with Fernet (cryptography's MultiFernet): the first key
# encrypts, every key decrypts, so a key is rotated by putting the new one first and running
# `rotate_connection_keys`. Generate one with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
CONNECTION_ENCRYPTION_KEYS = _list("CONNECTION_ENCRYPTION_KEYS", "")
if not CONNECTION_ENCRYPTION_KEYS:
    if ACTIONS_BACKEND == "live" and not DEBUG:
        raise ImproperlyConfigured(
            "CONNECTION_ENCRYPTION_KEYS is required when ACTIONS_BACKEND=live"
        )
    # Development and sandbox only: a key derived from SECRET_KEY.
    CONNECTION_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(f"connections:{SECRET_KEY}".encode()).digest()
        ).decode()
    ]
for _position, _key in enumerate(CONNECTION_ENCRYPTION_KEYS, start=1):
    try:
        if len(base64.urlsafe_b64decode(_key.encode())) != 32:
            raise ValueError
    except (ValueError, binascii.Error):
        raise ImproperlyConfigured(
            f"CONNECTION_ENCRYPTION_KEYS: key {_position} is not a Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None

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
JOB_LEASE_SECONDS = _int("JOB_LEASE_SECONDS", 600, minimum=1)
JOB_REQUEUE_AFTER_SECONDS = _int("JOB_REQUEUE_AFTER_SECONDS", 120, minimum=1)
SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 30, minimum=1)

# The longest a job can legitimately run: one model call per tool round plus the final answer.
LONGEST_JOB_SECONDS = (AI_MAX_TOOL_ROUNDS + 1) * AI_REQUEST_TIMEOUT_SECONDS
if JOB_LEASE_SECONDS <= LONGEST_JOB_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_LEASE_SECONDS ({JOB_LEASE_SECONDS}) must exceed the longest job, "
        f"(AI_MAX_TOOL_ROUNDS + 1) x AI_REQUEST_TIMEOUT_SECONDS = {LONGEST_JOB_SECONDS:g}"
    )
# The lease is renewed before each action, not during its connector call: a call that outlasted
# it would let the sweeper hand the job to a second worker while the first one is still sending.
if ACTIONS_BACKEND == "live" and _longest_call >= JOB_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_LEASE_SECONDS ({JOB_LEASE_SECONDS}) must exceed the longest connector call "
        f"(retries, a token refresh and their waits included): {_longest_call:g}"
    )

# --- Audit ----------------------------------------------------------------------------------
# Final action_audit rows older than AUDIT_RETENTION_DAYS are moved to gzip JSON Lines files in
# AUDIT_ARCHIVE_DIR by `manage.py archive_audit`; beat runs it daily when the directory is set.

AUDIT_RETENTION_DAYS = _int("AUDIT_RETENTION_DAYS", 90, minimum=1)
AUDIT_ARCHIVE_BATCH_SIZE = _int("AUDIT_ARCHIVE_BATCH_SIZE", 1000, minimum=1, maximum=100_000)
AUDIT_ARCHIVE_DIR = Path(_str("AUDIT_ARCHIVE_DIR")) if _str("AUDIT_ARCHIVE_DIR") else None
if AUDIT_ARCHIVE_DIR is not None and not AUDIT_ARCHIVE_DIR.is_absolute():
    raise ImproperlyConfigured(
        f"AUDIT_ARCHIVE_DIR must be an absolute path, got {str(AUDIT_ARCHIVE_DIR)!r}"
    )
AUDIT_ARCHIVE_HOUR_UTC = _int("AUDIT_ARCHIVE_HOUR_UTC", 3, minimum=0, maximum=23)

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
# The worker's remote-control queue (celery.pidbox: `celery inspect`, Flower) is declared
# durable, not auto-delete, so that closing its channel needs no round trip to Redis. With
# kombu's Redis transport, a broker outage noticed on the pidbox's pub/sub connection while a
# BRPOP is outstanding made the worker exit: Connection.collect() could not close the task
# channel (the pending BRPOP read fails first, and Transport.close_connection stops at the
# pidbox channel, whose auto-delete queue cannot be deleted on a dead server), detached the
# transport anyway, and the close() Celery calls next restored the unacknowledged messages
# through a transport with no client: AttributeError 'hostname', "Unrecoverable error", exit
# (docs/upstream/kombu-restore-unacked.md). A durable pidbox queue's binding expires on its own
# (control_queue_expires; kombu sweeps overdue bindings). Exclusive must be off with durable.
CELERY_CONTROL_QUEUE_DURABLE = True
CELERY_CONTROL_QUEUE_EXCLUSIVE = False
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
# more in flight cheaply. Ship two worker processes per core (scripts/run_stack.py): a process's
# threads share one GIL, and with one process per core the cores sat idle while threads queued.
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_CONCURRENCY = _int("WORKER_CONCURRENCY", 128, minimum=1, maximum=1024)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (messages per task state change) are for monitors: Flower switches them on in
# every worker when it starts and every few seconds after (its enable_events option, on by
# default). Always on, every job paid for them whether anything listened or not.
CELERY_WORKER_SEND_TASK_EVENTS = _bool("WORKER_SEND_TASK_EVENTS", False)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-jobs": {
        "task": "orchestrator.tasks.requeue_stale_jobs",
        "schedule": float(SWEEP_INTERVAL_SECONDS),
    },
    "sweep-actions": {
        "task": "actions.tasks.sweep_actions",
        "schedule": float(SWEEP_INTERVAL_SECONDS),
    },
}
if AUDIT_ARCHIVE_DIR is not None:
    CELERY_BEAT_SCHEDULE["archive-audit"] = {
        "task": "audit.tasks.archive_old_audit_rows",
        "schedule": crontab(minute=0, hour=AUDIT_ARCHIVE_HOUR_UTC),
    }

# --- API --------------------------------------------------------------------------------------

# DRF's JSON parser reads request.body, so Django enforces this bound on the declared length
# before reading anything; the API answers 413.
MAX_REQUEST_BODY_BYTES = 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

REST_FRAMEWORK = {
    # API keys authenticate only WorkspaceAPIView (its authentication_classes), which confirms
    # cached keys; no other view takes them.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["orchestrator.api.permissions.HasRequiredScopes"],
    # Bounded depth, finite numbers, storable strings: hostile bodies are a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": ["orchestrator.api.parsers.StrictJSONParser"],
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

# --- Metrics ----------------------------------------------------------------------------------
# /metrics is for Prometheus on the private network; a token guards it where that network is
# shared. Flower's own /metrics has no authentication at all: keep port 5555 private.

METRICS_TOKEN = _str("METRICS_TOKEN")
# HTTP headers carry bytes: a token outside printable ASCII could never be sent by a scraper, and
# /metrics compares bytes, so it would lock Prometheus out rather than fail at start-up.
if METRICS_TOKEN and not (METRICS_TOKEN.isascii() and METRICS_TOKEN.isprintable()):
    raise ImproperlyConfigured("METRICS_TOKEN must be printable ASCII (a header value)")
# One series per workspace grows with the number of tenants: opt in where they are few. Read by
# the processes that record the series: the workers, and the web for cancellations.
METRICS_WORKSPACE_LABEL = _bool("METRICS_WORKSPACE_LABEL", False)

# --- Logging ----------------------------------------------------------------------------------
# https://docs.python.org/3/library/logging.config.html
# One JSON object per line (python-json-logger) to stdout and to LOG_FILE, from web and worker
# alike. The file handler (concurrent-log-handler) rotates under a lock shared by the processes
# of a host, where the standard RotatingFileHandler would let each process rotate on its own.
# Every handler scrubs query strings and API keys from every record (log_scrubbing.py): a key a
# client put in a URL must reach no log line, whichever logger writes it.

LOG_LEVEL = _str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be a logging level name, got {LOG_LEVEL!r}")
_log_file = os.environ.get("LOG_FILE", "logs/app.log").strip()
LOG_FILE = (BASE_DIR / _log_file) if _log_file else None  # empty: stdout only
LOG_FILE_MAX_BYTES = _int("LOG_FILE_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
LOG_FILE_BACKUPS = _int("LOG_FILE_BACKUPS", 5, minimum=1, maximum=100)

_log_handlers = {
    "console": {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": "json",
        "filters": ["context", "scrub"],
    },
}
if LOG_FILE is not None:
    try:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"LOG_FILE directory cannot be created: {exc}") from None
    _log_handlers["file"] = {
        "class": "concurrent_log_handler.ConcurrentRotatingFileHandler",
        "filename": str(LOG_FILE),
        "maxBytes": LOG_FILE_MAX_BYTES,
        "backupCount": LOG_FILE_BACKUPS,
        "formatter": "json",
        "filters": ["context", "scrub"],
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "core.log_context.ContextFilter"},
        "scrub": {"()": "core.log_scrubbing.ScrubCredentials"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,  # ISO 8601 in UTC
        },
    },
    "handlers": _log_handlers,
    "root": {"handlers": list(_log_handlers), "level": LOG_LEVEL},
    # The HTTP clients log request URLs and headers at DEBUG; keep credentials out of the logs.
    "loggers": {
        # Django's own console handler would print every record a second time via the root.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # In a gunicorn worker, gunicorn's error log (it quotes request lines it cannot parse)
        # and access log (when turned on) go through these handlers too, instead of its own.
        "gunicorn.error": {"handlers": [], "propagate": True},
        "gunicorn.access": {"handlers": [], "propagate": True},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}
