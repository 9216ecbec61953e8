"""The shared board: a workspace's tasks for everyone in it, who added each, the "added by"
filter, links by slug, the header's switcher, which workspace "/" opens, the connection a
task is tracked or started on, what each role is shown, and the audit trail of task actions."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from teams.models import AuditEntry, Invitation, ProviderConnection, Workspace
from tests.fake_provider import PROVIDER_KEY, Reply
from tests.pages import HX, finished, join, live_params, make_task
from videos.models import Status, Submission, VideoTask
from videos.views import UNREADABLE_KEY


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="task-\d+" class="task[^"]*">.*?<code>([^<]+)</code>', html, re.S)


def added_by(html: str, task: VideoTask) -> str:
    row = re.search(rf'<tr id="task-{task.pk}".*?</tr>', html, re.S).group(0)
    return re.search(r'<td data-label="Added by" class="added-by">([^<]*)</td>', row).group(1)


def connection(workspace, name="Gateway", base_url="https://gateway.example/v1", *, default=False):
    made = ProviderConnection(workspace=workspace, name=name, base_url=base_url, is_default=default)
    made.set_api_key(PROVIDER_KEY)
    made.save()
    return made


# Everyone in the workspace sees its tasks; nobody else does


def test_a_teammate_sees_the_task_the_owner_tracked_with_who_added_it(owner, teammate, team):
    response = signed_in_as(owner).post("/w/team/track/", {"task_ids": "video_shared  Team cut"})
    assert response.status_code == 302
    task = VideoTask.objects.get(task_id="video_shared")
    assert (task.workspace, task.owner) == (team, owner)

    html = signed_in_as(teammate).get("/w/team/").content.decode()
    assert row_ids(html) == ["video_shared"]
    assert added_by(html, task) == "owner"
    assert added_by(signed_in_as(owner).get("/w/team/").content.decode(), task) == "you"
    page = signed_in_as(teammate).get(f"/tasks/{task.pk}/").content.decode()
    assert "added by owner" in page


def test_an_outsider_gets_404_for_the_board_and_the_task(owner, outsider, team):
    task = make_task(owner, "video_private", workspace=team)
    client = signed_in_as(outsider)
    for url in ["/w/team/", "/w/team/live/", f"/tasks/{task.pk}/", f"/tasks/{task.pk}/download/"]:
        assert client.get(url).status_code == 404, url
    assert "video_private" not in client.get("/").content.decode()


def test_the_same_task_id_is_tracked_independently_in_two_workspaces(signed_in, owner, team):
    signed_in.post("/w/owner/track/", {"task_ids": "video_twice  Mine"})
    signed_in.post("/w/team/track/", {"task_ids": "video_twice  Team's"})
    personal, shared = (
        VideoTask.objects.get(task_id="video_twice", workspace=Workspace.objects.personal_for(owner)),
        VideoTask.objects.get(task_id="video_twice", workspace=team),
    )
    assert personal.pk != shared.pk and (personal.label, shared.label) == ("Mine", "Team's")
    assert row_ids(signed_in.get("/w/owner/").content.decode()) == ["video_twice"]
    assert f'id="task-{shared.pk}"' in signed_in.get("/w/team/").content.decode()
    # Stopping one leaves the other.
    signed_in.post(f"/tasks/{personal.pk}/stop/")
    assert VideoTask.objects.filter(pk=shared.pk).exists()


# The "added by" filter


@pytest.fixture
def three_tasks(owner, teammate, team):
    return {
        "owner": make_task(owner, "video_by_owner", workspace=team),
        "teammate": make_task(teammate, "video_by_teammate", workspace=team),
        "elsewhere": make_task(teammate, "video_personal"),
    }


@pytest.mark.parametrize(
    ("by", "shown"),
    [
        ("", ["video_by_teammate", "video_by_owner"]),
        ("mine", ["video_by_teammate"]),
        ("owner", ["video_by_owner"]),
        ("teammate", ["video_by_teammate"]),
    ],
    ids=["everyone", "mine", "a-member", "myself-by-name"],
)
def test_the_added_by_filter(teammate, three_tasks, by, shown):
    html = signed_in_as(teammate).get("/w/team/", {"by": by}).content.decode()
    assert row_ids(html) == shown
    # The filter rides along in every link the page makes: its refresh, its form, Clear.
    if by:
        assert f'hx-get="/w/team/live/?by={by}"' in html
        assert f'<option value="{by}" selected>' in html or by == "teammate"  # "mine" lists the viewer
        assert '<a href="/w/team/">Clear</a>' in html


@pytest.mark.parametrize("by", ["outsider", "nobody-at-all", "x" * 500])
def test_someone_outside_the_workspace_is_no_filter(teammate, outsider, three_tasks, by):
    html = signed_in_as(teammate).get("/w/team/", {"by": by}).content.decode()
    assert "Unknown member filter ignored." in html
    assert row_ids(html) == ["video_by_teammate", "video_by_owner"]


def test_the_filter_offers_the_workspace_members_only(teammate, outsider, team, three_tasks):
    join(team, get_user_model().objects.create_user("third"), "viewer")
    html = signed_in_as(teammate).get("/w/team/").content.decode()
    select = re.search(r'<select name="by".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "mine", "owner", "third"]


def test_counts_stay_the_whole_boards_as_with_the_status_filter(teammate, three_tasks):
    html = signed_in_as(teammate).get("/w/team/", {"by": "mine", "status": "pending"}).content.decode()
    assert re.search(r"All <strong>2</strong>", html)
    assert '<a href="/w/team/?status=pending" class="count count-pending">' in html


def test_the_added_by_filter_pages_by_keyset(teammate, owner, team, monkeypatch):
    from videos import listing

    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    for i in range(5):
        make_task(owner, f"video_o{i}", workspace=team)
        make_task(teammate, f"video_t{i}", workspace=team)
    client = signed_in_as(teammate)
    seen, url = [], "/w/team/?by=owner"
    while url:
        html = client.get(url).content.decode()
        seen += row_ids(html)
        older = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = older.group(1).replace("&amp;", "&") if older else ""
        assert not url or url.startswith("/w/team/?by=owner&")
    assert seen == [f"video_o{i}" for i in reversed(range(5))]


# Links carry the workspace


def test_links_on_the_board_carry_the_slug(signed_in, owner, team):
    make_task(owner, "video_running", workspace=team, status=Status.PROCESSING)
    signed_in.get("/w/team/")  # now the current workspace
    html = signed_in.get("/").content.decode()
    assert row_ids(html) == ["video_running"]
    for needle in [
        'action="/w/team/track/"',
        'hx-post="/w/team/track/?"',
        'action="/w/team/videos/new/"',
        '<form class="filters" method="get" action="/w/team/"',
        '<a href="/w/team/?status=failed"',
        'hx-get="/w/team/live/?"',
    ]:
        assert needle in html, needle
    for stale in ['"/tasks/live/', '"/tasks/track/', '"/videos/new/', 'href="/?']:
        assert stale not in html, stale


# The header's workspace switcher


def test_the_switcher_lists_exactly_my_workspaces(signed_in, owner, outsider, team):
    other = Workspace.objects.create(name="Other team", slug="other")
    join(other, outsider, "owner")
    html = signed_in.get("/w/team/").content.decode()
    switcher = re.search(r'<details class="switcher">.*?</details>', html, re.S).group(0)
    links = dict(re.findall(r'<a href="(/w/[^"]+)"[^>]*>([^<]+)</a>', switcher))
    assert links == {"/w/team/": "Team", "/w/owner/": "owner&#x27;s workspace"}
    assert re.findall(r'<a href="([^"]+)" aria-current="true">', switcher) == ["/w/team/"]
    assert '<a href="/w/team/settings/">Settings</a>' in html
    assert '<a href="/w/team/connections/">Connections</a>' in html


def test_the_switcher_costs_nothing_on_fragments(signed_in, owner, django_assert_num_queries):
    make_task(owner, "video_live", status=Status.PROCESSING)
    params = live_params(signed_in.get("/").content.decode())
    # Session, user, membership with its workspace; no context processor query.
    with django_assert_num_queries(3):
        assert signed_in.get("/tasks/live/", params, headers=HX).status_code == 204


def test_slash_opens_the_workspace_used_last(signed_in, owner, team):
    signed_in.get("/w/team/")
    html = signed_in.get("/").content.decode()
    assert "<h1>Team</h1>" in html
    assert 'aria-current="true">Team</a>' in html
    signed_in.get("/w/owner/")
    html = signed_in.get("/").content.decode()
    assert "<h1>Your video tasks</h1>" in html
    assert 'aria-current="true">owner&#x27;s workspace</a>' in html


def test_slash_opens_the_invited_workspace_on_first_sign_in(db, owner, team):
    invitation, _token = Invitation.issue(team, "new@example.com", "viewer", owner)
    newbie = get_user_model().objects.create_user("newbie", password="newbie-password-1")
    invitation.accept(newbie)
    client = Client()
    client.post("/accounts/login/", {"username": "newbie", "password": "newbie-password-1"})
    assert Workspace.objects.filter(personal_of=newbie).exists()  # made at sign-in, never used
    html = client.get("/").content.decode()
    assert "<h1>Team</h1>" in html
    assert "your role: <strong>viewer</strong>" in html


# What each role is shown


def test_a_viewer_sees_no_controls(owner, team):
    viewer = get_user_model().objects.create_user("viewer")
    join(team, viewer, "viewer")
    running = make_task(owner, "video_running", workspace=team, status=Status.PROCESSING)
    done = finished(owner, workspace=team, url="https://cdn.example/v.mp4")
    client = signed_in_as(viewer)
    board = client.get("/w/team/").content.decode()
    assert "your role: <strong>viewer</strong>" in board
    assert "/w/team/track/" not in board and "/w/team/videos/new/" not in board
    for task in (running, done):
        page = client.get(f"/tasks/{task.pk}/").content.decode()
        for control in ["Refresh now", "Stop tracking", "Remix", "Delete at the provider"]:
            assert control not in page, (task, control)
        assert "Download the video" in page or task is running


def test_a_member_may_not_delete_at_the_provider(owner, teammate, team):
    done = finished(owner, workspace=team, url="https://cdn.example/v.mp4")
    page = signed_in_as(teammate).get(f"/tasks/{done.pk}/").content.decode()
    assert "your role: <strong>member</strong>" in page
    assert "Stop tracking" in page and "Remix" in page
    assert "Delete at the provider" not in page
    join(team, teammate, "manager")
    assert "Delete at the provider" in signed_in_as(teammate).get(f"/tasks/{done.pk}/").content.decode()


# A shared board keeps listening


def test_an_idle_shared_board_keeps_asking_for_news(owner, teammate, team):
    finished(owner, workspace=team)
    client = signed_in_as(teammate)
    html = client.get("/w/team/").content.decode()
    assert 'hx-trigger="every 10s' in html
    params = live_params(html)
    make_task(owner, "video_new_from_owner", workspace=team)
    update = client.get("/w/team/live/", params, headers=HX)
    assert update.status_code == 200  # not 286: the board goes on asking
    assert "video_new_from_owner" in update.content.decode()
    assert added_by(update.content.decode(), VideoTask.objects.get(task_id="video_new_from_owner")) == "owner"


# The connection a task is tracked or started on


def test_the_connection_select_offers_the_workspaces_own_preselecting_its_default(
    signed_in, team, settings, provider
):
    settings.VIDEO_API_BASE_URL = provider.base_url
    connection(team, "First")
    default = connection(team, "Second", default=True)
    connection(Workspace.objects.create(name="Elsewhere", slug="elsewhere"), "Not ours")
    html = signed_in.get("/w/team/").content.decode()
    select = re.search(r'<select name="connection" id="id_track_connection".*?</select>', html, re.S).group(0)
    assert "Not ours" not in select
    assert re.findall(r"<option[^>]*>([^<]*)</option>", select) == ["Deployment default", "First", "Second"]
    assert f'<option value="{default.pk}" selected>' in select
    # the track form, the create form and the board's connection filter
    assert html.count('name="connection"') == 3
    assert '<label for="id_create_connection">Connection</label>' in html


def test_the_connection_is_hidden_when_there_is_no_choice(signed_in, team, settings):
    settings.VIDEO_API_BASE_URL = ""
    only = connection(team, "Only one")
    html = signed_in.get("/w/team/").content.decode()
    assert f'<input type="hidden" name="connection" value="{only.pk}"' in html
    assert '<select name="connection"' not in html
    signed_in.post("/w/team/track/", {"task_ids": "video_on_only", "connection": str(only.pk)})
    assert VideoTask.objects.get(task_id="video_on_only").connection == only


def test_another_workspaces_connection_is_refused(signed_in, team, settings):
    settings.VIDEO_API_BASE_URL = "https://deployment.example/v1"
    theirs = connection(Workspace.objects.create(name="Elsewhere", slug="elsewhere"), "Theirs")
    response = signed_in.post(
        "/w/team/track/", {"task_ids": "video_x", "connection": str(theirs.pk)}, headers=HX
    )
    assert "Choose one of this workspace&#x27;s connections." in response.content.decode()
    assert not VideoTask.objects.filter(task_id="video_x").exists()
    response = signed_in.post(
        "/w/team/videos/new/", {"prompt": "A", "model": "m", "connection": str(theirs.pk)}, headers=HX
    )
    assert "Choose one of this workspace&#x27;s connections." in response.content.decode()
    assert not Submission.objects.exists()


def test_a_task_is_tracked_on_the_chosen_connection(signed_in, team, settings):
    settings.VIDEO_API_BASE_URL = "https://deployment.example/v1"
    connection(team, "Default", default=True)
    chosen = connection(team, "Chosen")
    signed_in.post("/w/team/track/", {"task_ids": "video_on_chosen", "connection": str(chosen.pk)})
    signed_in.post("/w/team/track/", {"task_ids": "video_on_deployment", "connection": ""})
    assert VideoTask.objects.get(task_id="video_on_chosen").connection == chosen
    assert VideoTask.objects.get(task_id="video_on_deployment").connection is None


def test_a_post_without_a_connection_uses_the_workspaces_default(signed_in, team, settings):
    settings.VIDEO_API_BASE_URL = "https://deployment.example/v1"
    default = connection(team, "Default", default=True)
    signed_in.post("/w/team/track/", {"task_ids": "video_from_a_script"})
    assert VideoTask.objects.get(task_id="video_from_a_script").connection == default


def test_a_video_is_started_on_the_chosen_connection(signed_in, team, settings, provider):
    settings.VIDEO_API_BASE_URL = "https://deployment.example/v1"
    chosen = connection(team, "Fake", base_url=provider.base_url)
    provider.script("POST /videos", Reply(200, {"id": "video_started", "status": "queued"}))
    signed_in.post("/w/team/videos/new/", {"prompt": "Waves", "model": "m", "connection": str(chosen.pk)})
    task = VideoTask.objects.get(task_id="video_started")
    assert (task.workspace, task.connection) == (team, chosen)
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {PROVIDER_KEY}"]


def test_a_connection_whose_key_cannot_be_read_is_said_and_crashes_nothing(signed_in, owner, team, provider):
    broken = connection(team, "Broken", base_url=provider.base_url, default=True)
    ProviderConnection.objects.filter(pk=broken.pk).update(api_key_encrypted="gAAAAAnot-a-token")
    on_broken = {"connection": str(broken.pk)}
    track = signed_in.post("/w/team/track/", {"task_ids": "video_k", **on_broken}, headers=HX)
    create = signed_in.post("/w/team/videos/new/", {"prompt": "A", "model": "m", **on_broken}, headers=HX)
    for response in (track, create):
        assert response.status_code == 200
        assert UNREADABLE_KEY.replace("'", "&#x27;") in response.content.decode()
    plain = signed_in.post("/w/team/track/", {"task_ids": "video_k", **on_broken}, follow=True)
    assert UNREADABLE_KEY.replace("'", "&#x27;") in plain.content.decode()
    assert not VideoTask.objects.filter(task_id="video_k").exists()
    assert not Submission.objects.exists() and provider.requests == []

    done = finished(owner, workspace=team, connection=broken)
    for url in [f"/tasks/{done.pk}/remix/", f"/tasks/{done.pk}/delete-remote/"]:
        page = signed_in.post(url, {"prompt": "again"}, follow=True).content.decode()
        assert UNREADABLE_KEY.replace("'", "&#x27;") in page, url
    assert provider.requests == [] and not AuditEntry.objects.exists()


# Every task action is in the audit trail


def test_every_task_action_is_audited(signed_in, owner, team, configured):
    configured.script("POST /videos", Reply(200, {"id": "video_new", "status": "queued"}))
    signed_in.post("/w/team/track/", {"task_ids": "video_a\nvideo_b"})
    signed_in.post("/w/team/videos/new/", {"prompt": "Waves", "model": "m"})
    done = finished(owner, workspace=team)
    remixed = Reply(200, {"id": "video_remix", "status": "queued"})
    configured.script(f"POST /videos/{done.task_id}/remix", remixed)
    signed_in.post(f"/tasks/{done.pk}/remix/", {"prompt": "again"})
    configured.script(f"DELETE /videos/{done.task_id}", Reply(200, {"id": done.task_id, "deleted": True}))
    signed_in.post(f"/tasks/{done.pk}/delete-remote/")
    signed_in.post(f"/tasks/{VideoTask.objects.get(task_id='video_a').pk}/stop/")

    trail = list(
        AuditEntry.objects.filter(workspace=team).order_by("pk").values_list("kind", "target", "actor_name")
    )
    K = AuditEntry.Kind
    assert trail == [
        (K.TRACKED, "video_a", "owner"),
        (K.TRACKED, "video_b", "owner"),
        (K.STARTED, "video_new", "owner"),
        (K.REMIXED, done.task_id, "owner"),
        (K.DELETED_REMOTE, done.task_id, "owner"),
        (K.STOPPED_TRACKING, "video_a", "owner"),
    ]
