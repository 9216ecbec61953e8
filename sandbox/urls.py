"""The sandbox provider's API, relative to its mount point (/sandbox/v1/ in dashboard/urls.py).

No trailing slashes: clients build these paths from a base URL the way they would for a
real gateway, and a redirect would turn a POST into a GET.
"""

from __future__ import annotations

from django.urls import path

from sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("videos", views.videos, name="videos"),
    path("videos/<str:video_id>", views.video, name="video"),
    path("videos/<str:video_id>/remix", views.remix, name="remix"),
    path("videos/<str:video_id>/content", views.content, name="content"),
]
