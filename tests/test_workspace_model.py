"""The team model underneath everything: personal workspaces, where tasks are filed, and
the per-workspace version the live refresh compares."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from teams.models import Membership, Role, Workspace
from tests.pages import make_task
from videos.models import VideoTask


def test_signing_in_for_the_first_time_gives_a_personal_workspace(client, db):
    user = get_user_model().objects.create_user("newcomer", password="newcomer-password-1")
    assert not Workspace.objects.filter(personal_of=user).exists()
    response = client.post("/accounts/login/", {"username": "newcomer", "password": "newcomer-password-1"})
    assert response.status_code == 302
    workspace = Workspace.objects.get(personal_of=user)
    assert Membership.objects.get(workspace=workspace).user == user
    assert Membership.objects.get(workspace=workspace).role == Role.OWNER
    # The board opens on it.
    assert client.get("/").context["workspace"] == workspace


def test_personal_workspaces_get_unique_slugs_and_are_made_once(db):
    users = [get_user_model().objects.create_user(name) for name in ("Ann Lee", "ann-lee", "ann_lee")]
    slugs = {Workspace.objects.personal_for(user).slug for user in users}
    assert slugs == {"ann-lee", "ann-lee-2", "ann_lee"}
    assert Workspace.objects.personal_for(users[0]) == Workspace.objects.personal_for(users[0])
    assert Workspace.objects.count() == 3


def test_a_second_personal_workspace_is_refused_by_the_database(owner):
    Workspace.objects.personal_for(owner)
    with pytest.raises(IntegrityError), transaction.atomic():
        Workspace.objects.create(name="again", slug="again", personal_of=owner)


def test_a_task_made_without_a_workspace_goes_to_its_owners_personal_one(owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_a")
    assert task.workspace == Workspace.objects.personal_for(owner)
    [bulk] = VideoTask.objects.bulk_create([VideoTask(owner=owner, task_id="video_b")])
    assert bulk.workspace == task.workspace


def test_a_task_id_is_unique_within_a_workspace_not_across(owner, team):
    make_task(owner, "video_same")
    VideoTask.objects.create(owner=owner, workspace=team, task_id="video_same")
    with pytest.raises(IntegrityError), transaction.atomic():
        VideoTask.objects.create(owner=owner, workspace=team, task_id="video_same")
    created, already = VideoTask.objects.track(owner, [("video_same", "")], workspace=team)
    assert (created, already) == ([], ["video_same"])


def _token(workspace: Workspace) -> str:
    workspace.refresh_from_db()
    return workspace.live_token()


def test_the_live_token_moves_on_every_visible_change_and_only_then(owner, team):
    task = VideoTask.objects.create(owner=owner, workspace=team, task_id="video_v")
    other = Workspace.objects.personal_for(owner)
    before, other_before = _token(team), _token(other)

    # Bookkeeping does not wake open boards.
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=timezone.now(), poll_count=3)
    task.last_polled_at = timezone.now()
    task.save(update_fields=["last_polled_at"])
    assert _token(team) == before

    steps = [
        lambda: VideoTask.objects.filter(pk=task.pk).update(progress=40),
        lambda: VideoTask.objects.get(pk=task.pk).save(),  # a full save of a changed row only
        lambda: setattr(task, "label", "renamed") or task.save(update_fields=["label"]),
        lambda: VideoTask.objects.create(owner=owner, workspace=team, task_id="video_w"),
        lambda: VideoTask.objects.filter(task_id="video_w").delete(),
    ]
    seen = {before}
    for step in steps:
        step()
        seen.add(_token(team))
    # The unchanged full save is the one step that does not move it.
    assert len(seen) == len(steps)
    # Another workspace's board hears nothing of it.
    assert _token(other) == other_before


def test_adding_or_removing_a_task_moves_the_roster_part(owner, team):
    roster = _token(team).partition(".")[0]
    task = VideoTask.objects.create(owner=owner, workspace=team, task_id="video_r")
    assert _token(team).partition(".")[0] != roster
    roster = _token(team).partition(".")[0]
    VideoTask.objects.filter(pk=task.pk).update(progress=10)
    assert _token(team).partition(".")[0] == roster
    task.delete()
    assert _token(team).partition(".")[0] != roster


def test_deleting_a_workspace_takes_its_tasks_and_connections(owner, team):
    from teams.models import ProviderConnection

    connection = ProviderConnection(workspace=team, name="gw", base_url="https://gw.example/v1")
    connection.set_api_key("sk-test-0123456789")
    connection.save()
    VideoTask.objects.create(owner=owner, workspace=team, task_id="video_x", connection=connection)
    team.delete()
    assert not VideoTask.objects.filter(task_id="video_x").exists()
    assert not ProviderConnection.objects.exists()
