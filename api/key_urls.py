"""A workspace's API keys page, beside its other pages (/w/<slug>/api-keys/)."""

from __future__ import annotations

from django.urls import path

from api import key_views

app_name = "api_keys"

urlpatterns = [
    path("w/<slug:slug>/api-keys/", key_views.key_list, name="list"),
    path("w/<slug:slug>/api-keys/<int:pk>/revoke/", key_views.key_revoke, name="revoke"),
]
