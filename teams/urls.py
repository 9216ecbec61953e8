"""The pages of a workspace: its people, invitations, settings and audit trail
(teams.views), and its provider connections (teams.connection_urls)."""

from __future__ import annotations

from django.urls import include, path

from teams import connection_urls, views

app_name = "teams"

workspace_urls = [
    path("settings/", views.workspace_settings, name="settings"),
    path("audit/", views.audit, name="audit"),
    path("invitations/", views.invite, name="invite"),
    path("invitations/<int:pk>/withdraw/", views.withdraw_invitation, name="withdraw_invitation"),
    path("people/<int:pk>/role/", views.change_role, name="change_role"),
    path("people/<int:pk>/remove/", views.remove_member, name="remove_member"),
    path("leave/", views.leave, name="leave"),
    path("step-down/", views.step_down, name="step_down"),
    path("rename/", views.rename, name="rename"),
    path("delete/", views.delete_workspace, name="delete_workspace"),
]

urlpatterns = [
    path("w/<slug:slug>/connections/", include(connection_urls.urlpatterns)),
    path("w/<slug:slug>/", include(workspace_urls)),
    path("workspaces/new/", views.workspace_new, name="workspace_new"),
    # The page an invitation link leads to, once its token is in the session; before the
    # link's own path, which would take "join" for a token.
    path("invitations/join/", views.invitation, name="invitation"),
    path("invitations/<str:token>/", views.accept_invitation, name="accept_invitation"),
]
