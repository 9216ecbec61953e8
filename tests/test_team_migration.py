"""Every existing person and task is carried over into teams: each user gets a personal
workspace they own, holding their tasks and submissions (videos 0007)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("videos", "0005_move_sandbox_out"), ("teams", None)]
AFTER = [("videos", "0008_workspace_required"), ("teams", "0001_initial")]


@pytest.fixture
def migrator(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_each_user_gets_a_personal_workspace_holding_their_tasks(migrator):
    old = migrator.loader.project_state([("videos", "0005_move_sandbox_out")]).apps
    User = old.get_model("auth", "User")
    ann = User.objects.create(username="ann")
    bob = User.objects.create(username="Bob Smith")
    # Two users whose names make the same slug must still get two workspaces.
    bob2 = User.objects.create(username="bob-smith")
    carol = User.objects.create(username="carol")  # no tasks: still gets a workspace
    Task = old.get_model("videos", "VideoTask")
    Submission = old.get_model("videos", "Submission")
    # The same task ID tracked by two people stays two tasks.
    for user, ids in ((ann, ["shared", "a1"]), (bob, ["shared"]), (bob2, ["b2"])):
        for task_id in ids:
            Task.objects.create(owner=user, task_id=task_id)
    Submission.objects.create(owner=ann, prompt="a cat")

    migrator.loader.build_graph()
    migrator.migrate(AFTER)
    new = migrator.loader.project_state(AFTER).apps
    Workspace = new.get_model("teams", "Workspace")
    Membership = new.get_model("teams", "Membership")
    Task = new.get_model("videos", "VideoTask")
    Submission = new.get_model("videos", "Submission")

    workspaces = {w.personal_of_id: w for w in Workspace.objects.all()}
    assert set(workspaces) == {ann.pk, bob.pk, bob2.pk, carol.pk}
    assert len({w.slug for w in workspaces.values()}) == 4
    for user_pk, workspace in workspaces.items():
        # Each is alone in their own, as its owner: nobody sees anything new.
        assert list(Membership.objects.filter(workspace=workspace).values_list("user_id", "role")) == [
            (user_pk, "owner")
        ]
        assert set(Task.objects.filter(workspace=workspace).values_list("owner_id", flat=True)) <= {user_pk}
    assert Task.objects.filter(workspace=workspaces[ann.pk]).count() == 2
    assert Task.objects.filter(task_id="shared").count() == 2
    assert Submission.objects.get().workspace_id == workspaces[ann.pk].pk
    assert Membership.objects.count() == 4
