from __future__ import annotations

from django.urls import path

from videos import views

app_name = "videos"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tasks/live/", views.dashboard_live, name="dashboard_live"),
    path("tasks/track/", views.track_tasks, name="track_tasks"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/refresh/", views.refresh_task, name="refresh_task"),
    path("tasks/<int:pk>/stop/", views.stop_tracking, name="stop_tracking"),
    path("status/", views.worker_status, name="worker_status"),
    path("videos/new/", views.new_video, name="new_video"),
    path("tasks/<int:pk>/download/", views.download, name="download"),
    path("tasks/<int:pk>/remix/", views.remix_task, name="remix_task"),
    path("tasks/<int:pk>/delete-remote/", views.delete_remote, name="delete_remote"),
]
