"""A workspace's provider connections, under /w/<slug>/connections/ (names in the "teams"
namespace)."""

from __future__ import annotations

from django.urls import path

from teams import connection_views

urlpatterns = [
    path("", connection_views.connection_list, name="connections"),
    path("add/", connection_views.connection_add, name="connection_add"),
    path("<int:pk>/", connection_views.connection_edit, name="connection_edit"),
    path("<int:pk>/test/", connection_views.connection_test, name="connection_test"),
    path("<int:pk>/hook/", connection_views.connection_hook, name="connection_hook"),
    path("<int:pk>/remove/", connection_views.connection_remove, name="connection_remove"),
]
