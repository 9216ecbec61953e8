from __future__ import annotations

from django.urls import path

from videos import views

app_name = "videos"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
]
