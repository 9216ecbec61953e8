"""The admin knows teams: workspaces and their people, connections (keys never shown),
invitations, the audit trail, and task lists by workspace and connection."""

from __future__ import annotations

import html as html_lib

import pytest
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from teams.models import AuditEntry, Invitation, Membership, ProviderConnection, Role, Workspace
from tests.pages import join
from videos.models import ProviderState, Submission, VideoTask

SECRET = "sk-admin-plaintext-KEY-a1b2c3d4"


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client.force_login(admin)
    return client


@pytest.fixture
def gateway(team) -> ProviderConnection:
    connection = ProviderConnection(workspace=team, name="Gateway", base_url="https://gw.example/v1")
    connection.set_api_key(SECRET)
    connection.save()
    return connection


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_every_teams_page_renders_for_a_superuser(admin_client, team, gateway, owner, teammate):
    ProviderState.for_connection(gateway, gateway.base_url)
    invitation, _ = Invitation.issue(team, "new@example.com", Role.MEMBER, owner)
    entry = AuditEntry.record(team, owner, AuditEntry.Kind.INVITED, "new@example.com")
    task = VideoTask.objects.create(owner=owner, workspace=team, connection=gateway, task_id="on-gw")
    submission = Submission.objects.create(
        owner=owner, workspace=team, connection=gateway, prompt="A harbour"
    )
    for url in (
        "/admin/",
        "/admin/teams/workspace/",
        "/admin/teams/workspace/?o=-6.-5",  # by task count, then member count
        f"/admin/teams/workspace/{team.pk}/change/",
        "/admin/teams/workspace/add/",
        "/admin/teams/providerconnection/",
        f"/admin/teams/providerconnection/{gateway.pk}/change/",
        "/admin/teams/providerconnection/add/",
        "/admin/teams/invitation/",
        f"/admin/teams/invitation/{invitation.pk}/change/",
        "/admin/teams/auditentry/",
        f"/admin/teams/auditentry/{entry.pk}/change/",
        "/admin/videos/providerstate/",
        "/admin/videos/videotask/",
        f"/admin/videos/videotask/{task.pk}/change/",
        "/admin/videos/videotask/add/",
        "/admin/videos/submission/",
        f"/admin/videos/submission/{submission.pk}/change/",
    ):
        page(admin_client, url)

    workspace_page = page(admin_client, f"/admin/teams/workspace/{team.pk}/change/")
    assert "teammate" in workspace_page  # the members inline
    assert 'name="board_version"' not in workspace_page  # shown, never edited
    listed = page(admin_client, "/admin/teams/workspace/?q=team")
    # Members and tasks counted per workspace: the team has two people and one task.
    assert '<td class="field-member_count">2</td>' in listed
    assert '<td class="field-task_count">1</td>' in listed
    states = page(admin_client, "/admin/videos/providerstate/")
    assert "Gateway" in states and "Team" in states


def test_the_key_never_reaches_a_connection_page(admin_client, gateway):
    ciphertext = gateway.api_key_encrypted
    assert ciphertext and SECRET not in ciphertext
    for url in (
        "/admin/teams/providerconnection/",
        f"/admin/teams/providerconnection/{gateway.pk}/change/",
        f"/admin/teams/providerconnection/{gateway.pk}/history/",
        f"/admin/teams/providerconnection/{gateway.pk}/delete/",
        "/admin/teams/providerconnection/?q=Gateway",
    ):
        html = page(admin_client, url)
        assert SECRET not in html, url
        assert ciphertext not in html, url
        assert ciphertext[:40] not in html, url
        assert "a1b2c3d4"[-4:] in html or url.endswith(("/history/", "/delete/")), url
    change = page(admin_client, f"/admin/teams/providerconnection/{gateway.pk}/change/")
    assert "…c3d4" in change
    assert 'name="api_key_encrypted"' not in change
    assert 'name="new_key"' in change and 'type="password"' in change


def connection_form(**changes) -> dict[str, str]:
    data = {"name": "Gateway", "base_url": "https://gw.example/v1", "max_rps": "0", "new_key": ""}
    data.update(changes)
    return data


def test_a_new_key_set_in_the_admin_is_stored_encrypted(admin_client, gateway, team):
    url = f"/admin/teams/providerconnection/{gateway.pk}/change/"
    replacement = "sk-rotated-by-operator-WXYZ"
    response = admin_client.post(url, connection_form(new_key=replacement))
    assert response.status_code == 302, response.content.decode()[:2000]
    gateway.refresh_from_db()
    assert gateway.api_key() == replacement
    assert replacement not in gateway.api_key_encrypted
    assert gateway.key_last4 == "WXYZ"
    assert gateway.masked_key == "…WXYZ"
    entry = AuditEntry.objects.get(workspace=team, kind=AuditEntry.Kind.CONNECTION_CHANGED)
    assert entry.actor_name == "ops" and "key" in entry.detail and replacement not in entry.detail
    html = page(admin_client, url)
    assert replacement not in html and gateway.api_key_encrypted not in html

    # Saving without a new key keeps the stored one.
    stored = gateway.api_key_encrypted
    assert admin_client.post(url, connection_form(max_rps="2.5")).status_code == 302
    gateway.refresh_from_db()
    assert gateway.api_key_encrypted == stored and gateway.max_rps == 2.5

    # A form shown again after an error does not echo the key that was typed.
    typed = "sk-typed-but-refused-5678"
    again = admin_client.post(url, connection_form(base_url="ftp://gw.example/v1", new_key=typed))
    assert again.status_code == 200
    assert "must start with https:// (or http://)" in html_lib.unescape(again.content.decode())
    assert typed not in again.content.decode()
    gateway.refresh_from_db()
    assert gateway.api_key() == replacement


def test_a_connection_added_in_the_admin(admin_client, team):
    response = admin_client.post(
        "/admin/teams/providerconnection/add/",
        {**connection_form(name="Second", new_key="sk-brand-new-key-QRST"), "workspace": team.pk},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = ProviderConnection.objects.get(workspace=team, name="Second")
    assert added.api_key() == "sk-brand-new-key-QRST"
    assert added.created_by.get_username() == "ops"
    assert AuditEntry.objects.filter(workspace=team, kind=AuditEntry.Kind.CONNECTION_ADDED).exists()


def test_a_blocked_connection_is_shown_and_resumed(admin_client, gateway):
    state = ProviderState.for_connection(gateway, gateway.base_url)
    state.block("The provider refused the API key (HTTP 401).", gateway.key_fingerprint())
    never_polled = ProviderConnection(
        workspace=gateway.workspace, name="Idle", base_url="https://idle.example/v1"
    )
    never_polled.save()
    html = page(admin_client, "/admin/teams/providerconnection/")
    assert "Blocked: The provider refused the API key" in html
    assert "not polled yet" in html
    response = admin_client.post(
        "/admin/teams/providerconnection/",
        {"action": "resume_polling", "_selected_action": [gateway.pk, never_polled.pk]},
    )
    assert response.status_code == 302
    state.refresh_from_db()
    assert state.blocked_reason == "" and state.paused_until is None
    assert not ProviderState.objects.filter(connection=never_polled).exists()


def test_an_invitation_never_shows_its_token(admin_client, team, owner):
    invitation, token = Invitation.issue(team, "guest@example.com", Role.VIEWER, owner)
    for url in ("/admin/teams/invitation/", f"/admin/teams/invitation/{invitation.pk}/change/"):
        html = page(admin_client, url)
        assert "guest@example.com" in html
        assert token not in html
        assert invitation.token_hash not in html
        assert 'name="token_hash"' not in html
    assert admin_client.get("/admin/teams/invitation/add/").status_code == 403
    pending = page(admin_client, "/admin/teams/invitation/?state=pending")
    assert "guest@example.com" in pending
    assert "guest@example.com" not in page(admin_client, "/admin/teams/invitation/?state=accepted")


def test_the_audit_trail_is_read_only(admin_client, team, owner):
    entry = AuditEntry.record(team, owner, AuditEntry.Kind.TRACKED, "video_1")
    assert admin_client.get("/admin/teams/auditentry/add/").status_code == 403
    view = page(admin_client, f"/admin/teams/auditentry/{entry.pk}/change/")
    assert "video_1" in view
    assert 'name="target"' not in view
    changed = admin_client.post(f"/admin/teams/auditentry/{entry.pk}/change/", {"target": "forged"})
    assert changed.status_code == 403
    deleted = admin_client.post(f"/admin/teams/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    bulk = admin_client.post(
        "/admin/teams/auditentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    entry.refresh_from_db()
    assert entry.target == "video_1"
    listed = page(admin_client, "/admin/teams/auditentry/?kind__exact=tracked&q=owner")
    assert "video_1" in listed
    assert "video_1" not in page(admin_client, "/admin/teams/auditentry/?kind__exact=invited")


def test_a_workspace_keeps_an_owner(admin_client, team, owner):
    ownership = Membership.objects.get(workspace=team, user=owner)
    member = Membership.objects.get(workspace=team, role=Role.MEMBER)
    response = admin_client.post(
        f"/admin/teams/workspace/{team.pk}/change/",
        {
            "name": "Team",
            "slug": "team",
            "personal_of": "",
            "memberships-TOTAL_FORMS": "2",
            "memberships-INITIAL_FORMS": "2",
            "memberships-0-id": ownership.pk,
            "memberships-0-workspace": team.pk,
            "memberships-0-user": owner.pk,
            "memberships-0-role": Role.MANAGER,
            "memberships-1-id": member.pk,
            "memberships-1-workspace": team.pk,
            "memberships-1-user": member.user_id,
            "memberships-1-role": Role.MEMBER,
        },
    )
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    ownership.refresh_from_db()
    assert ownership.role == Role.OWNER


def test_the_task_list_filters_by_workspace_and_connection(admin_client, team, gateway, owner, teammate):
    VideoTask.objects.create(owner=owner, workspace=team, connection=gateway, task_id="team-on-gateway")
    VideoTask.objects.create(owner=owner, workspace=team, task_id="team-on-default")
    VideoTask.objects.create(owner=teammate, task_id="teammate-personal")
    by_workspace = page(admin_client, f"/admin/videos/videotask/?workspace__id__exact={team.pk}")
    assert "team-on-gateway" in by_workspace and "team-on-default" in by_workspace
    assert "teammate-personal" not in by_workspace
    by_connection = page(admin_client, f"/admin/videos/videotask/?connection__id__exact={gateway.pk}")
    assert "team-on-gateway" in by_connection
    assert "team-on-default" not in by_connection and "teammate-personal" not in by_connection
    on_default = page(admin_client, "/admin/videos/videotask/?connection__isnull=True")
    assert "team-on-default" in on_default and "team-on-gateway" not in on_default
    assert SECRET not in by_connection


def test_a_task_cannot_be_filed_on_another_workspaces_connection(admin_client, gateway, owner, outsider):
    elsewhere = Workspace.objects.personal_for(outsider)
    response = admin_client.post(
        "/admin/videos/videotask/add/",
        {
            "workspace": elsewhere.pk,
            "connection": gateway.pk,
            "owner": outsider.pk,
            "task_id": "borrowed-key",
            "status": "pending",
            "progress": "0",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "connection of the task" in html_lib.unescape(response.content.decode())
    assert not VideoTask.objects.filter(task_id="borrowed-key").exists()


def add_teams(start: int, count: int, owner) -> None:
    """`count` workspaces, each with its owner, a member, a connection and tasks on it."""
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"person-{start + i}") for i in range(count)]
    )
    for i, person in enumerate(users):
        workspace = Workspace.objects.create(name=f"Crew {start + i}", slug=f"crew-{start + i}")
        join(workspace, owner, Role.OWNER)
        join(workspace, person, Role.MEMBER)
        connection = ProviderConnection(workspace=workspace, name="gw", base_url="https://gw.example/v1")
        connection.set_api_key(f"sk-crew-key-{start + i:08d}")
        connection.save()
        VideoTask.objects.bulk_create(
            [
                VideoTask(owner=person, workspace=workspace, connection=connection, task_id=f"crew-{i}-{n}")
                for n in range(3)
            ]
        )


@pytest.mark.parametrize(
    "url",
    ["/admin/videos/videotask/", "/admin/teams/workspace/", "/admin/teams/providerconnection/"],
)
def test_changelists_cost_the_same_with_more_rows(admin_client, owner, url, django_assert_num_queries):
    add_teams(0, 4, owner)
    admin_client.get(url)  # warm caches (content types, permissions)
    with CaptureQueriesContext(db_connection) as few:
        assert admin_client.get(url).status_code == 200
    add_teams(4, 30, owner)
    with django_assert_num_queries(len(few)):
        html = page(admin_client, url)
    assert "crew-33" in html or "Crew 33" in html


def test_a_connection_clash_is_a_message_not_an_error(admin_client, team, gateway):
    other = ProviderConnection(workspace=team, name="Other", base_url="https://other.example/v1")
    other.save()
    gateway.is_default = True
    gateway.save()
    url = f"/admin/teams/providerconnection/{other.pk}/change/"
    response = admin_client.post(url, connection_form(name="Other", is_default="on"))
    assert response.status_code == 200
    assert "already has a default connection" in response.content.decode()
    response = admin_client.post(url, connection_form(name="Gateway"))
    assert response.status_code == 200
    assert "already has a connection by that name" in response.content.decode()
    other.refresh_from_db()
    assert other.name == "Other" and not other.is_default


def test_role_changes_in_the_admin_go_on_the_trail(admin_client, team, owner, teammate, outsider):
    ownership = Membership.objects.get(workspace=team, user=owner)
    member = Membership.objects.get(workspace=team, user=teammate)
    response = admin_client.post(
        f"/admin/teams/workspace/{team.pk}/change/",
        {
            "name": "Team",
            "slug": "team",
            "personal_of": "",
            "memberships-TOTAL_FORMS": "3",
            "memberships-INITIAL_FORMS": "2",
            "memberships-0-id": ownership.pk,
            "memberships-0-workspace": team.pk,
            "memberships-0-user": owner.pk,
            "memberships-0-role": Role.OWNER,
            "memberships-1-id": member.pk,
            "memberships-1-workspace": team.pk,
            "memberships-1-user": teammate.pk,
            "memberships-1-role": Role.MANAGER,
            "memberships-2-id": "",
            "memberships-2-workspace": team.pk,
            "memberships-2-user": outsider.pk,
            "memberships-2-role": Role.VIEWER,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    member.refresh_from_db()
    assert member.role == Role.MANAGER
    trail = {
        (e.kind, e.target, e.detail) for e in AuditEntry.objects.filter(workspace=team, actor_name="ops")
    }
    assert trail == {
        (AuditEntry.Kind.ROLE_CHANGED, "teammate", "In the admin: manager"),
        (AuditEntry.Kind.JOINED, "outsider", "Added in the admin as viewer"),
    }
