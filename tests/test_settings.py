"""Settings as operators meet them: environment variables in, a clear refusal or a clean check out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils.module_loading import import_string
from whitenoise.storage import CompressedManifestStaticFilesStorage

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {
    "SECRET_KEY": "k3y-" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "ALLOWED_HOSTS": "videos.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://videos.example.com",
    "VIDEO_API_BASE_URL": "https://gateway.example.com/v1",
    "VIDEO_API_KEY": "sk-production-like",
    "EMAIL_HOST": "smtp.example.com",
    "EMAIL_HOST_USER": "videos",
    "EMAIL_HOST_PASSWORD": "smtp-password",
    "DEFAULT_FROM_EMAIL": "videos@example.com",
    # A fixed test key: without one, `check --deploy` warns that keys derive from SECRET_KEY.
    "VIDEO_ENCRYPTION_KEYS": "q3mRPLKtK8oj0kYf3yYk3pBfV6rJ6nH1d0c9ZsX2w4E=",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")
        # What the shell running the tests set (a CI's DATABASE_CONN_MAX_AGE) must not leak in.
        and not k.startswith(("VIDEO_", "DATABASE_", "EMAIL_", "LOGIN_", "TRUSTED_PROXY"))
    }
    clean.update(DJANGO_SETTINGS_MODULE="dashboard.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def settings_value(expression: str, **env: str) -> object:
    result = manage(
        "shell",
        "-c",
        f"import json; from django.conf import settings; print(json.dumps({expression}))",
        **env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_check_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_debug_a_missing_secret_key_stops_start_up():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_is_off_unless_set():
    assert settings_value("settings.DEBUG", **PRODUCTION) is False
    assert settings_value("settings.DEBUG", DEBUG="1") is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("VIDEO_POLL_INTERVAL", "fast"),
        ("VIDEO_POLL_INTERVAL", "0"),
        ("VIDEO_POLL_CONCURRENCY", "1.5"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("LOGIN_FAILURE_LIMIT", "0"),
        ("EMAIL_PORT", "smtp"),
    ],
)
def test_malformed_values_stop_start_up_naming_the_variable(name, value):
    result = manage("check", **{**PRODUCTION, name: value})
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.parametrize(
    ("base_url", "check_id"),
    [
        ("ftp://gateway.example.com/v1", "videos.E001"),
        ("gateway.example.com/v1", "videos.E001"),
        ("https://user:pw@gateway.example.com/v1", "videos.E002"),
        ("https://gateway.example.com/v1?key=x", "videos.E002"),
    ],
)
def test_a_malformed_provider_url_is_reported_at_start_up(base_url, check_id):
    result = manage("check", **{**PRODUCTION, "VIDEO_API_BASE_URL": base_url})
    assert result.returncode != 0
    assert check_id in result.stderr


def test_a_missing_provider_is_a_warning_at_start_up():
    env = {k: v for k, v in PRODUCTION.items() if not k.startswith("VIDEO_")}
    result = manage("check", **env)
    assert result.returncode == 0
    assert "videos.W001" in result.stderr + result.stdout


def test_missing_email_is_a_warning_at_start_up_and_reset_is_not_offered():
    env = {k: v for k, v in PRODUCTION.items() if not k.startswith(("EMAIL_", "DEFAULT_FROM"))}
    result = manage("check", **env)
    assert result.returncode == 0
    assert "dashboard.W001" in result.stderr + result.stdout
    assert settings_value("settings.PASSWORD_RESET_ENABLED", **env) is False
    assert settings_value("settings.PASSWORD_RESET_ENABLED", **PRODUCTION) is True


def test_email_from_the_environment():
    keys = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_USE_SSL")
    keys += ("DEFAULT_FROM_EMAIL",)
    email = f"{{k: getattr(settings, k) for k in {keys!r}}}"
    assert settings_value(email, **PRODUCTION) == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "DEFAULT_FROM_EMAIL": "videos@example.com",
    }
    implicit_tls = settings_value(email, **PRODUCTION, EMAIL_PORT="465")
    assert (implicit_tls["EMAIL_USE_TLS"], implicit_tls["EMAIL_USE_SSL"]) == (False, True)
    # make run: no mail server, the email (and its reset link) is printed.
    console = "django.core.mail.backends.console.EmailBackend"
    assert settings_value("settings.EMAIL_BACKEND", DEBUG="1") == console
    both = manage("check", **PRODUCTION, EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    assert both.returncode != 0
    assert "EMAIL_USE_TLS" in both.stderr


def test_database_url_selects_postgresql_with_persistent_checked_connections():
    keys = ("ENGINE", "NAME", "HOST", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")
    db = settings_value(
        f"{{k: settings.DATABASES['default'][k] for k in {keys!r}}}",
        **PRODUCTION,
        DATABASE_URL="postgres://app:pw@db.internal:5432/videos",
    )
    assert db == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "videos",
        "HOST": "db.internal",
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }


def test_sqlite_in_the_project_root_by_default():
    db = settings_value(
        "[settings.DATABASES['default']['ENGINE'], str(settings.DATABASES['default']['NAME'])]", DEBUG="1"
    )
    assert db == ["django.db.backends.sqlite3", str(ROOT / "db.sqlite3")]


def test_static_files_are_hashed_and_compressed():
    backend = settings_value("settings.STORAGES['staticfiles']['BACKEND']", **PRODUCTION)
    assert issubclass(import_string(backend), CompressedManifestStaticFilesStorage)


def test_migrations_match_the_models():
    result = manage("makemigrations", "--check", "--dry-run", DEBUG="1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mount_point_comes_from_the_environment():
    assert settings_value("settings.FORCE_SCRIPT_NAME", **PRODUCTION) is None
    assert settings_value("settings.FORCE_SCRIPT_NAME", **PRODUCTION, FORCE_SCRIPT_NAME="/video-tasks/") == (
        "/video-tasks"
    )
