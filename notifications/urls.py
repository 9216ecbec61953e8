"""A workspace's notification channels, under /w/<slug>/notifications/."""

from __future__ import annotations

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("w/<slug:slug>/notifications/", views.channels, name="channels"),
    path("w/<slug:slug>/notifications/<int:pk>/", views.channel_detail, name="channel"),
    path("w/<slug:slug>/notifications/<int:pk>/test/", views.channel_test, name="channel_test"),
    path("w/<slug:slug>/notifications/<int:pk>/enable/", views.channel_enable, name="channel_enable"),
    path("w/<slug:slug>/notifications/<int:pk>/remove/", views.channel_remove, name="channel_remove"),
]
