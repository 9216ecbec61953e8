from __future__ import annotations

from django.urls import include, path

from videos import views

app_name = "videos"

# A workspace's board and its forms, by the workspace's slug, so a link opens the same
# thing for a teammate. The same views without a slug act on the person's current
# workspace (the one "/" shows).
board_urls = [
    path("", views.dashboard, name="board"),
    path("live/", views.dashboard_live, name="board_live"),
    path("track/", views.track_tasks, name="board_track"),
    path("track/undo/", views.undo_track, name="undo_track"),
    path("videos/new/", views.new_video, name="board_new_video"),
    path("status/", views.worker_status, name="board_status"),
    path("export.csv", views.export_csv, name="board_export"),
    path("bulk/", views.bulk_action, name="board_bulk"),
]

urlpatterns = [
    path("w/<slug:slug>/", include(board_urls)),
    path("", views.dashboard, name="dashboard"),
    path("tasks/live/", views.dashboard_live, name="dashboard_live"),
    path("tasks/track/", views.track_tasks, name="track_tasks"),
    path("tasks/<int:pk>/", views.task_detail, name="task_detail"),
    path("tasks/<int:pk>/refresh/", views.refresh_task, name="refresh_task"),
    path("tasks/<int:pk>/stop/", views.stop_tracking, name="stop_tracking"),
    path("status/", views.worker_status, name="worker_status"),
    path("videos/new/", views.new_video, name="new_video"),
    path("tasks/<int:pk>/download/", views.download, name="download"),
    path("density/", views.set_density, name="density"),
    path("tasks/<int:pk>/remix/", views.remix_task, name="remix_task"),
    path("tasks/<int:pk>/retry/", views.retry_task, name="retry_task"),
    path("tasks/<int:pk>/duplicate/", views.duplicate_task, name="duplicate_task"),
    path("tasks/<int:pk>/delete-remote/", views.delete_remote, name="delete_remote"),
]
