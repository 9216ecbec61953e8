"""Who may do what to a workspace's tasks, cell by cell: every task URL and board action by
owner, manager, member, viewer and an outsider. Allowed: not a 403 or 404. Not allowed: a
403 for someone in the workspace, a 404 for anyone else, and nothing changed (the tasks as
they were, no request to the provider, no submission, no audit entry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from teams.models import AuditEntry
from teams.roles import Action, allows
from tests.fake_provider import PROVIDER_KEY, FakeProvider, Reply
from tests.pages import HX, join, make_task
from videos.models import KeepState, Status, Submission, VideoTask


@dataclass(frozen=True)
class Act:
    name: str
    method: str
    url: str  # {pk}: the task's primary key
    action: str
    data: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    # Which task the URL acts on: a finished one with a kept copy, or one still running.
    task: str = "kept"


ACTS = [
    Act("task-page", "get", "/tasks/{pk}/", Action.VIEW),
    Act("download", "get", "/tasks/{pk}/download/", Action.VIEW),
    Act("refresh", "post", "/tasks/{pk}/refresh/", Action.REFRESH, task="running"),
    Act("stop-get", "get", "/tasks/{pk}/stop/", Action.STOP_TRACKING),
    Act("stop-post", "post", "/tasks/{pk}/stop/", Action.STOP_TRACKING),
    Act("remix", "post", "/tasks/{pk}/remix/", Action.START, {"prompt": "Again, at night"}),
    Act("delete-remote-get", "get", "/tasks/{pk}/delete-remote/", Action.DELETE_REMOTE),
    Act("delete-remote-post", "post", "/tasks/{pk}/delete-remote/", Action.DELETE_REMOTE),
    Act("board", "get", "/w/team/", Action.VIEW),
    Act("track", "post", "/w/team/track/", Action.TRACK, {"task_ids": "video_tracked_here"}),
    Act("new-video", "post", "/w/team/videos/new/", Action.START, {"prompt": "Waves", "model": "m"}),
    Act("live-refresh", "get", "/w/team/live/", Action.VIEW, {"token": "stale"}, HX),
    Act("status", "get", "/w/team/status/", Action.VIEW, headers=HX),
]
ROLES = ["owner", "manager", "member", "viewer", "outsider"]


@pytest.fixture(scope="module")
def module_provider():
    # One server for the module's many cells: starting and stopping one per test costs
    # half a second each.
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def provider(module_provider, settings):
    """The module's fake provider as the deployment's own, its record and scripts reset."""
    module_provider.requests.clear()
    module_provider.scripts.clear()
    module_provider.script("POST /videos", Reply(200, {"id": "video_started", "status": "queued"}))
    module_provider.script(
        "POST /videos/video_kept/remix", Reply(200, {"id": "video_remixed", "status": "queued"})
    )
    module_provider.script("DELETE /videos/video_kept", Reply(200, {"id": "video_kept", "deleted": True}))
    settings.VIDEO_API_BASE_URL = module_provider.base_url
    settings.VIDEO_API_KEY = PROVIDER_KEY
    return module_provider


@pytest.fixture
def tasks(owner, team):
    kept = VideoTask(
        owner=owner,
        workspace=team,
        task_id="video_kept",
        status=Status.COMPLETED,
        progress=100,
        completed_at=timezone.now(),
        keep_state=KeepState.KEPT,
    )
    kept.kept_file.save("video_kept.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=False)
    kept.save()
    running = make_task(owner, "video_running", workspace=team, status=Status.PROCESSING, progress=30)
    return {"kept": kept, "running": running}


def person(role: str, team, outsider):
    if role == "outsider":
        return outsider
    user = get_user_model().objects.create_user(f"a-{role}")
    join(team, user, role)
    return user


def state() -> tuple:
    return (
        list(VideoTask.objects.order_by("pk").values()),
        list(Submission.objects.values_list("pk", flat=True)),
        list(AuditEntry.objects.values_list("pk", flat=True)),
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("act", ACTS, ids=[act.name for act in ACTS])
def test_role_table(act: Act, role: str, team, outsider, tasks, provider):
    client = Client()
    client.force_login(person(role, team, outsider))
    url = act.url.format(pk=tasks[act.task].pk)
    before = state()

    response = getattr(client, act.method)(url, act.data, headers=act.headers)
    if response.streaming:
        b"".join(response.streaming_content)  # a download: read to the end, which closes its file

    if role != "outsider" and allows(role, act.action):
        assert response.status_code not in (403, 404)
        return
    assert response.status_code == (404 if role == "outsider" else 403)
    assert state() == before
    assert provider.requests == []
