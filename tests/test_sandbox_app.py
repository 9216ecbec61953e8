"""The sandbox provider is an app of its own, installed only when VIDEO_SANDBOX is on.

Each check runs manage.py in a subprocess with production-like settings (not the test
settings, which always install the app) against a throwaway SQLite file.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests import test_settings
from tests.test_settings import PRODUCTION

SANDBOX = {"VIDEO_SANDBOX": "1"}


def manage(database: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py with production settings, on a throwaway SQLite file."""
    return test_settings.manage(*args, DATABASE_URL=f"sqlite:///{database}", **{**PRODUCTION, **env})


def migrate(database: Path, *args: str, **env: str) -> None:
    result = manage(database, "migrate", "--no-input", *args, **env)
    assert result.returncode == 0, result.stdout + result.stderr


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def sandbox_tables(database: Path) -> set[str]:
    return {name for name in tables(database) if "sandbox" in name.lower()}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite3"


def test_a_production_database_has_no_sandbox_table_and_can_enable_it_later(database):
    migrate(database)
    assert "videos_videotask" in tables(database)
    assert sandbox_tables(database) == set()

    # Turning the sandbox on later (a demo copy of a database) adds its table: nothing in
    # videos' migrations depends on the sandbox app's.
    migrate(database, **SANDBOX)
    assert sandbox_tables(database) == {"sandbox_sandboxvideo"}


def test_a_demo_database_has_the_sandbox_table_in_the_sandbox_app(database):
    migrate(database, **SANDBOX)
    assert sandbox_tables(database) == {"sandbox_sandboxvideo"}


@pytest.mark.parametrize("env", [{}, SANDBOX], ids=["production", "demo"])
def test_an_existing_database_loses_the_old_table_in_videos(database, env):
    # Where every database was before the move: the table in videos, created by 0001.
    migrate(database, "videos", "0004_worker_job_failures", **env)
    assert "videos_sandboxvideo" in tables(database)

    migrate(database, **env)
    assert sandbox_tables(database) == ({"sandbox_sandboxvideo"} if env else set())


def test_without_the_sandbox_nothing_of_it_is_installed_routed_or_collected(database):
    probe = (
        "from django.apps import apps\n"
        "from django.contrib.staticfiles import finders\n"
        "from django.urls import NoReverseMatch, reverse\n"
        "print(apps.is_installed('sandbox'))\n"
        "print(bool(finders.find('sandbox/sample.mp4')))\n"
        "try:\n    print(reverse('sandbox:videos'))\nexcept NoReverseMatch:\n    print('no route')\n"
    )
    off = manage(database, "shell", "-c", probe)
    assert off.returncode == 0, off.stderr
    assert off.stdout.splitlines()[-3:] == ["False", "False", "no route"]
    assert "Unknown command" in manage(database, "seed_demo").stderr

    on = manage(database, "shell", "-c", probe, **SANDBOX)
    assert on.returncode == 0, on.stderr
    assert on.stdout.splitlines()[-3:] == ["True", "True", "/sandbox/v1/videos"]


def test_migrations_match_the_models_with_the_sandbox_installed(database):
    result = manage(database, "makemigrations", "--check", "--dry-run", DEBUG="1", **SANDBOX)
    assert result.returncode == 0, result.stdout + result.stderr
