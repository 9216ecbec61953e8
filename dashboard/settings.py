"""Settings for the video task dashboard, all read from the environment.

The names are part of the interface contract in the README: operators set them on a PaaS.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for local development."
        )
    # Only ever used with DEBUG on, on a developer's machine.
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "videos",
]

MIDDLEWARE = [
    # First, so a platform's health probe is answered over plain HTTP, whatever the Host
    # header, before the HTTPS redirect and host validation below.
    "dashboard.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Persistent connections with a health check: a PaaS database restarts under us.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Persistent connections buy nothing on SQLite, and a writer waits instead of failing
    # at once while the web process and the poller share the file.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed names served with far-future cache headers by WhiteNoise.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security. A PaaS router terminates TLS and tells us so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# A strict Content-Security-Policy: no inline script or style anywhere in our pages, so a
# hostile string from a provider that slipped past escaping still could not run.
# Video and thumbnails may come straight from the provider's CDN, hence https: for media.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:"],
        "media-src": [SELF, "https:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"},
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # urllib3 logs full request lines at DEBUG; keep it quiet so nothing it prints
        # can carry a provider's URL with credentials.
        "urllib3": {"level": "WARNING"},
    },
}

# The video provider: an OpenAI-compatible /v1/videos API behind a base URL and a key.
VIDEO_API_BASE_URL = env_str("VIDEO_API_BASE_URL").rstrip("/")
VIDEO_API_KEY = env_str("VIDEO_API_KEY")
VIDEO_POLL_INTERVAL = env_float("VIDEO_POLL_INTERVAL", 5.0, minimum=0.1, maximum=3600)
VIDEO_API_TIMEOUT = env_float("VIDEO_API_TIMEOUT", 20.0, minimum=1, maximum=300)
VIDEO_API_MAX_RESPONSE_BYTES = env_int("VIDEO_API_MAX_RESPONSE_BYTES", 1_048_576, minimum=1024)
VIDEO_POLL_CONCURRENCY = env_int("VIDEO_POLL_CONCURRENCY", 16, minimum=1, maximum=512)
# How long a worker may hold claimed tasks before another may take them (a killed worker's
# tasks are polled again after this). 0 = derived from the timeouts (about 80 s by default).
VIDEO_POLL_LEASE = env_float("VIDEO_POLL_LEASE", 0.0, minimum=0, maximum=3600)
# A ceiling on requests per second to the provider, shared by a worker's threads; 0 = none.
# With several workers, give each its share of the provider's limit.
VIDEO_API_MAX_RPS = env_float("VIDEO_API_MAX_RPS", 0.0, minimum=0, maximum=10_000)

# What the "New video" form offers, as comma-separated lists (e.g. VIDEO_MODELS=sora-2,veo-3).
# Empty: a free text field (models) or an optional one (sizes, seconds), since providers
# differ and nothing here may assume OpenAI's own names.
VIDEO_MODELS = env_list("VIDEO_MODELS")
VIDEO_SIZES = env_list("VIDEO_SIZES")
VIDEO_SECONDS = env_list("VIDEO_SECONDS")
# The largest reference image the form accepts, in bytes.
VIDEO_REFERENCE_MAX_BYTES = env_int("VIDEO_REFERENCE_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)

# Downloads the server makes on a user's behalf (the download proxy, kept copies): the
# largest file it fetches, and how long one fetch may take in all.
VIDEO_DOWNLOAD_MAX_BYTES = env_int("VIDEO_DOWNLOAD_MAX_BYTES", 2 * 1024**3, minimum=1024)
VIDEO_DOWNLOAD_DEADLINE = env_float("VIDEO_DOWNLOAD_DEADLINE", 600.0, minimum=1, maximum=6 * 3600)
VIDEO_DOWNLOAD_CONCURRENCY = env_int("VIDEO_DOWNLOAD_CONCURRENCY", 2, minimum=1, maximum=256)  # per process

# Kept copies: finished videos (and thumbnails) are copied into Django's storage before the
# provider's link expires. The local disk by default (MEDIA_ROOT); any S3-compatible bucket
# when VIDEO_STORAGE_BUCKET is set (a PaaS disk does not survive a restart).
VIDEO_KEEP = env_bool("VIDEO_KEEP", default=True)
VIDEO_KEEP_DAYS = env_int("VIDEO_KEEP_DAYS", 0, minimum=0)  # 0 = keep forever
MEDIA_ROOT = BASE_DIR / "media"
MEDIA_URL = "/media/"  # never served directly: kept files go through the download view
VIDEO_STORAGE_BUCKET = env_str("VIDEO_STORAGE_BUCKET")
if VIDEO_STORAGE_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": VIDEO_STORAGE_BUCKET,
            "endpoint_url": env_str("VIDEO_STORAGE_ENDPOINT_URL") or None,
            "region_name": env_str("VIDEO_STORAGE_REGION") or None,
            "access_key": env_str("VIDEO_STORAGE_ACCESS_KEY_ID") or None,
            "secret_key": env_str("VIDEO_STORAGE_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# The built-in sandbox provider, served by this app under /sandbox/v1/ for local runs and
# demos. Off unless enabled: in production it would be a free fake video API.
VIDEO_SANDBOX = env_bool("VIDEO_SANDBOX", default=False)
