"""A workspace's provider connections, under /w/<slug>/connections/ (names in the "teams"
namespace)."""

from __future__ import annotations

urlpatterns: list = []
