"""Settings of the bare project: `django-admin startproject` defaults, trimmed to what an API
needs, and read from BARE_* variables so the bench can point it at its own database and Redis."""

import os

SECRET_KEY = os.environ.get("SECRET_KEY", "bare-bench-only")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "bench.bare",
]

# startproject's stack, less the admin's messages and clickjacking headers (no admin here).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "bench.bare.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

WSGI_APPLICATION = "bench.bare.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BARE_DB_NAME", "orchestrator_bench_bare"),
        "HOST": os.environ.get("BARE_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BARE_DB_PORT", "5432"),
        "USER": os.environ.get("BARE_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("BARE_DB_PASSWORD", ""),
        # Django's own pool with its defaults: without one, 128 threads a worker that finish
        # their model calls together open a connection each, past PostgreSQL's max_connections.
        "OPTIONS": {"pool": True},
    }
}

USE_TZ = True
TIME_ZONE = "UTC"

REDIS_URL = os.environ.get("BARE_REDIS_URL", "redis://127.0.0.1:6379/7")
CELERY_BROKER_URL = REDIS_URL
