"""Test settings: the production settings module with a throwaway key and fast hashing.

Only what a test run cannot provide is changed here; everything else is what operators get.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-only-" + "x" * 50)

from dashboard.settings import *  # noqa: F403
from dashboard.settings import BASE_DIR, DATABASES, INSTALLED_APPS, STATIC_URL

# The sandbox provider's app, whatever VIDEO_SANDBOX says: its tests mount it themselves
# (tests/sandbox_urls.py) and the demo commands need its table.
if "sandbox" not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests render templates without running collectstatic first.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "dashboard.storage.StaticFilesStorage", "OPTIONS": {"base_url": STATIC_URL}},
}
SECURE_SSL_REDIRECT = False

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a poll_videos subprocess started by a test sees the same data.
    # One file per run, so two runs side by side (a developer and CI) never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}

# No collectstatic before tests: serve from the finders, as runserver does, instead of
# warning that STATIC_ROOT does not exist.
WHITENOISE_AUTOREFRESH = True

# Kept copies go to a scratch directory of this run, never into the project.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="video-dashboard-media-"))
