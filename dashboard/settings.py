"""Settings for the video task dashboard, all read from the environment.

The names are part of the interface contract in the README: operators set them on a PaaS.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from dashboard.encryption import validated_keys
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
# Earlier SECRET_KEYs, still accepted for signatures (sessions, reset links) and, when
# VIDEO_ENCRYPTION_KEYS is unset, still able to decrypt the provider keys stored under them.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

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
    "axes",
    "dashboard.apps.DashboardConfig",
    "teams",
    "notifications",
    "api",
    "videos",
]

MIDDLEWARE = [
    # Outside everything that may answer by itself (the health probe, static files, a 400
    # for a bad Host), so those answers carry the same security headers as pages.
    "dashboard.middleware.SecurityHeadersEverywhereMiddleware",
    # Before the HTTPS redirect and host validation below, so a platform's health probe is
    # answered over plain HTTP, whatever the Host header.
    "dashboard.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "dashboard.middleware.StripNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.middleware.PrivateCacheMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "teams.context_processors.workspaces",
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

# django-axes first: it refuses a locked-out client before a password hash is computed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Route names, not paths: reversed under the mount point (SCRIPT_NAME / FORCE_SCRIPT_NAME).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "videos:dashboard"
LOGOUT_REDIRECT_URL = "login"
# The path the platform mounts the app under, when it does not pass SCRIPT_NAME itself.
FORCE_SCRIPT_NAME = env_str("FORCE_SCRIPT_NAME").rstrip("/") or None

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed names served with far-future cache headers by WhiteNoise, under
    # the mount point of each request (see dashboard.storage).
    "staticfiles": {
        "BACKEND": "dashboard.storage.ManifestStaticFilesStorage",
        "OPTIONS": {"base_url": STATIC_URL},
    },
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
# /healthz answers only "ok"/"not ok" unless asked with this token (Authorization: Bearer);
# then it details the database, the worker's heartbeat and failing jobs. Empty: never.
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")

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

# Sign-in throttling (django-axes, both /accounts/login/ and /admin/login/). After
# LOGIN_FAILURE_LIMIT wrong passwords for one account from one client address, that pair
# is refused (429) for LOGIN_LOCKOUT_MINUTES after its last counted failure; the same account
# from another address, and other accounts from that address, still sign in. Counted in
# the database, so every web process and machine shares the count and a restart keeps it.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60))
# Attempts while locked are refused without being counted, so a lockout ends on time.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # no record of every successful sign-in, kept forever
AXES_CLIENT_IP_CALLABLE = "dashboard.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "dashboard.accounts.lockout_response"
# Proxies in front of the app that append to X-Forwarded-For (a PaaS router: 1; a CDN in
# front of it: 2; none, as under `make run`: 0). The client address is read that many
# entries from the right; the left-most entry is the client's own claim.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0 if DEBUG else 1, minimum=0, maximum=10)

# Django's cache: shared by every web process, so it can count a key's API requests
# (API_RATE_LIMIT). Redis when REDIS_URL is set; otherwise a table in the database
# (`django_cache`, made by the api app's migration 0002, wherever `migrate` runs).
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}
    }
# Requests a minute each API key may make; past it the API answers 429 with Retry-After.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 120, minimum=1, maximum=1_000_000)

# Email, for password reset links: SMTP when EMAIL_HOST is set, the console under DEBUG
# (`make run` prints the link). Otherwise password reset is not offered at all, rather than
# saying it sent an email that cannot arrive.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=EMAIL_PORT == 465)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS) and EMAIL_USE_SSL are exclusive; set one of them.")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "webmaster@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if not EMAIL_HOST and DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
PASSWORD_RESET_ENABLED = bool(EMAIL_HOST) or DEBUG

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    # Every line leaves with the provider key scrubbed, whatever logged it (a traceback, a
    # library): the code scrubs what it logs already, this is the second line of defence.
    "filters": {"scrub_secrets": {"()": "videos.scrub.ScrubSecrets"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "filters": ["scrub_secrets"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
        # urllib3 logs full request lines at DEBUG; keep it quiet so nothing it prints
        # can carry a provider's URL with credentials.
        "urllib3": {"level": "WARNING"},
        # django-axes narrates every sign-in at INFO; its failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

# The video provider: an OpenAI-compatible /v1/videos API behind a base URL and a key.
VIDEO_API_BASE_URL = env_str("VIDEO_API_BASE_URL").rstrip("/")
VIDEO_API_KEY = env_str("VIDEO_API_KEY")
# Fernet keys that encrypt secrets stored in the database (provider connections' keys),
# comma-separated: the first encrypts, all decrypt, so a key is rotated by putting the new
# one first, running `manage.py reencrypt`, then dropping the old one. Empty: one key is
# derived from SECRET_KEY (and SECRET_KEY_FALLBACKS), which `check --deploy` warns about.
VIDEO_ENCRYPTION_KEYS = validated_keys("VIDEO_ENCRYPTION_KEYS", env_list("VIDEO_ENCRYPTION_KEYS"))
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
# Hosts a workspace manager's connection may point at although they resolve to loopback,
# private or other non-public addresses ("host" or "host:port", comma-separated): a manager
# is not an operator, so only these may reach the deployment's own network.
VIDEO_FETCH_ALLOW_HOSTS = env_list("VIDEO_FETCH_ALLOW_HOSTS")
# Where people reach the dashboard (e.g. https://videos.example.com, with any mount path):
# notifications link to task pages with it. Unset: messages carry no links.
SITE_URL = env_str("SITE_URL").rstrip("/")
if SITE_URL and not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("SITE_URL must be an http(s) address, e.g. https://videos.example.com")

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
# demos. Off unless enabled: in production it would be a free fake video API. Its app is
# installed only then, so a production database never gets its table.
VIDEO_SANDBOX = env_bool("VIDEO_SANDBOX", default=False)
if VIDEO_SANDBOX:
    INSTALLED_APPS.append("sandbox")
