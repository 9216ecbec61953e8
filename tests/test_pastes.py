"""Pasting into "Track tasks": the ID is read out of video addresses and JSON, lines that
name no task are refused with a reason, and the panel shows each line's ID with an Undo."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from teams.models import AuditEntry
from tests.pages import HX, join, make_task
from videos.models import VideoTask
from videos.pastes import Found, Refused, Source, read_line, read_paste


def one(text: str) -> Found | Refused:
    found, refused = read_paste(text)
    assert len(found) + len(refused) == 1, (found, refused)
    return (found or refused)[0]


def ids(text: str) -> list[str]:
    return [item.task_id for item in read_paste(text)[0]]


# Addresses of the /videos/{id} family


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.example.com/v1/videos/video_abc123",
        "https://gateway.example.com/videos/video_abc123",
        "https://gateway.example.com/v1/videos/video_abc123/",
        "https://gateway.example.com/v1/videos/video_abc123/content",
        "https://gateway.example.com/v1/videos/video_abc123/content?variant=thumbnail",
        "https://gateway.example.com/v1/videos/video_abc123/remix",
        "https://gateway.example.com:8443/v1/videos/video_abc123?x=1#frag",
        "http://127.0.0.1:8000/openai/v1/videos/video_abc123/content?variant=spritesheet",
        "HTTPS://GATEWAY.EXAMPLE.COM/v1/videos/video_abc123",
        "www.gateway.example.com/v1/videos/video_abc123",
        "/v1/videos/video_abc123/content",
        "https://gateway.example.com/v1/videos/video%5Fabc123",
    ],
)
def test_the_id_is_read_out_of_a_video_address(url):
    item = one(url)
    assert isinstance(item, Found)
    assert (item.task_id, item.source, item.label) == ("video_abc123", Source.URL, "")


def test_an_address_with_a_label_keeps_the_label():
    item = one("https://gateway.example.com/v1/videos/video_abc123/content\tHarbour, take 3")
    assert (item.task_id, item.label) == ("video_abc123", "Harbour, take 3")


def test_an_encoded_slash_is_part_of_the_id():
    # IDs may hold "/" (the client percent-encodes it back into one path segment).
    assert ids("https://g.example/v1/videos/ops%2Fvideo_1%2Bx%3D/content") == ["ops/video_1+x="]


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.example.com/v1/videos/..",
        "https://gateway.example.com/v1/videos/%2E%2E",
        "https://gateway.example.com/v1/videos/%2e%2E/content",
        "https://gateway.example.com/v1/videos/a%2F..%2Fadmin",
        "https://gateway.example.com/v1/videos/../files/x",
        "https://gateway.example.com/v1/../videos/video_abc123",
        "https://gateway.example.com/v1/videos/%2E",
    ],
)
def test_dot_segments_are_refused(url):
    item = one(url)
    assert isinstance(item, Refused)
    assert item.where == "Line 1"


@pytest.mark.parametrize(
    "url",
    [
        "https://gateway.example.com/v1/videos",
        "https://gateway.example.com/v1/videos/",
        "https://gateway.example.com/v1/videos/video_abc123/download",
        "https://gateway.example.com/v1/files/file_abc",
        "https://dashboard.example.com/tasks/12/",
        "https://example.com",
        "ftp://files.example.com/videos/video_1/content/extra",
        "www.example.com",
        "https://[::1/videos/video_1",
        "https://g.example/v1/videos/video%FF",
    ],
)
def test_other_addresses_are_refused_as_addresses(url):
    item = one(url)
    assert isinstance(item, Refused)
    assert "web address" in item.reason or "address" in item.reason


# JSON, a line of it or the whole answer


@pytest.mark.parametrize(
    "line",
    [
        '"id": "video_abc123",',
        '"id": "video_abc123"',
        "'id': 'video_abc123',",
        '  "task_id": "video_abc123",',
        '"video_id":"video_abc123"',
        '{"id": "video_abc123", "object": "video", "status": "queued"',  # cut short
        '"remixed_from_video_id": "video_zzz", "id": "video_abc123",',
        "id: 'video_abc123',",
    ],
)
def test_a_json_line_gives_its_id(line):
    item = one(line)
    assert isinstance(item, Found), item
    assert (item.task_id, item.source) == ("video_abc123", Source.JSON)


WHOLE = """{
  "id": "video_68d7512d07848190",
  "object": "video",
  "created_at": 1758941485,
  "status": "in_progress",
  "model": "sora-2",
  "progress": 33,
  "remixed_from_video_id": null,
  "error": null
}"""


def test_a_whole_response_object_over_many_lines_is_one_id():
    found, refused = read_paste(WHOLE)
    assert refused == []
    assert [(f.task_id, f.where, f.source) for f in found] == [
        ("video_68d7512d07848190", "Lines 1 to 10", Source.JSON)
    ]


def test_a_list_response_gives_each_items_id():
    text = (
        '{"object": "list", "data": [{"id": "video_1", "object": "video"}, {"id": "video_2"}], '
        '"first_id": "video_1", "has_more": false}'
    )
    assert ids(text) == ["video_1", "video_2"]


def test_an_array_of_objects_gives_each_id_and_refuses_an_item_without_one():
    found, refused = read_paste('[\n {"id": "video_1"},\n {"task_id": "task_2"},\n {"status": "queued"}\n]')
    assert [f.task_id for f in found] == ["video_1", "task_2"]
    assert [r.where for r in refused] == ["Lines 1 to 5, item 3"]


def test_json_between_plain_lines_is_read_whole_and_the_lines_on_their_own():
    text = "video_first  Opening\r\n" + WHOLE.replace("\n", "\r\n") + "\r\nvideo_last\r\n"
    found, refused = read_paste(text)
    assert [(f.task_id, f.label, f.where) for f in found] == [
        ("video_first", "Opening", "Line 1"),
        ("video_68d7512d07848190", "", "Lines 2 to 11"),
        ("video_last", "", "Line 12"),
    ]
    assert refused == []


def test_an_error_response_names_no_task():
    item = one('{"error": {"message": "Video not found", "type": "invalid_request_error"}}')
    assert isinstance(item, Refused) and "names no task" in item.reason


@pytest.mark.parametrize(
    "line", ["}", "],", '"object": "video",', '"status": "queued",', "{", '"progress":', "status:"]
)
def test_json_lines_without_an_id_are_refused_as_json(line):
    item = one(line)
    assert isinstance(item, Refused)
    assert "JSON" in item.reason


def test_a_truncated_object_keeps_its_id_line_and_refuses_the_rest():
    found, refused = read_paste('{\n  "id": "video_cut",\n  "object": "video",')
    assert [f.task_id for f in found] == ["video_cut"]
    assert [r.where for r in refused] == ["Line 1", "Line 3"]


# Sentences, labels and what stays accepted


@pytest.mark.parametrize(
    "line",
    ["please check this one", "Can you track these?", "Hi, thanks", "this is the harbour video"],
)
def test_prose_is_refused(line):
    item = one(line)
    assert isinstance(item, Refused) and "sentence" in item.reason


def test_prose_around_an_id_says_to_put_the_id_first():
    item = one("Please track video_abc123 today")
    assert isinstance(item, Refused)
    assert "put the ID (video_abc123) first" in item.reason


@pytest.mark.parametrize(
    ("line", "task_id", "label"),
    [
        ("video_68d7512d  Harbour, take 3", "video_68d7512d", "Harbour, take 3"),
        ("video_68d7512d\tHarbour, take 3", "video_68d7512d", "Harbour, take 3"),
        ("video_68d7512d Harbour take 3", "video_68d7512d", "Harbour take 3"),
        ("video_68d7512d please check this one", "video_68d7512d", "please check this one"),
        ("labelled  with a label", "labelled", "with a label"),
        ("video/with+slash=", "video/with+slash=", ""),
        ("3f2a9c1e-1b2c-4d5e-9f00-0123456789ab", "3f2a9c1e-1b2c-4d5e-9f00-0123456789ab", ""),
        ("projects/p/operations/op-1:run", "projects/p/operations/op-1:run", ""),
        ("hello", "hello", ""),
        ('video_a  {draft} "quoted"', "video_a", '{draft} "quoted"'),
    ],
)
def test_ids_with_labels_stay_ids(line, task_id, label):
    item = read_line(line, "Line 1")
    assert isinstance(item, Found), item
    assert (item.task_id, item.label, item.source) == (task_id, label, Source.ID)


def test_windows_line_endings_tabs_and_blank_lines():
    text = "\r\n  video_a\tFirst  \r\n\r\n\tvideo_b  \r\nhttps://g.example/v1/videos/video_c\r\n"
    found, refused = read_paste(text)
    assert [(f.task_id, f.label, f.where) for f in found] == [
        ("video_a", "First", "Line 2"),
        ("video_b", "", "Line 4"),
        ("video_c", "", "Line 5"),
    ]
    assert refused == []


def test_control_characters_and_dots_are_still_refused():
    found, refused = read_paste("bad\x00id\n..\nvideo_ok  A\x00 label")
    assert [(f.task_id, f.label) for f in found] == [("video_ok", "A label")]
    assert [r.where for r in refused] == ["Line 1", "Line 2"]
    assert "only of dots" in refused[1].reason


def test_a_refusal_quotes_a_long_line_shortened():
    item = one("https://gateway.example.com/" + "x/" * 100)
    assert isinstance(item, Refused) and len(item.pasted) == 60 and item.pasted.endswith("…")
    assert str(item).startswith("Line 1 ('https://gateway")


# The form and the panel


def test_the_panel_shows_each_line_and_its_id(signed_in, owner):
    make_task(owner, "video_known")
    text = "\n".join(
        [
            "https://gateway.example.com/v1/videos/video_from_url/content  Harbour",
            '"id": "video_from_json",',
            "video_known",
            "please check this one",
            "https://gateway.example.com/v1/files/file_1",
        ]
    )
    response = signed_in.post("/tasks/track/", {"task_ids": text}, headers=HX)
    html = response.content.decode()
    assert set(VideoTask.objects.values_list("task_id", flat=True)) == {
        "video_known",
        "video_from_url",
        "video_from_json",
    }
    assert VideoTask.objects.get(task_id="video_from_url").label == "Harbour"
    assert '→ <code>video_from_url</code> <span class="muted">(from a URL)</span>: tracked' in html
    assert '→ <code>video_from_json</code> <span class="muted">(from JSON)</span>: tracked' in html
    assert "Line 3: <code>video_known</code>: already tracked" in html
    assert "Line 4 (&#x27;please check this one&#x27;): this looks like a sentence" in html
    assert "Line 5" in html and "web address" in html
    assert ">Undo</button>" in html


def test_nothing_but_wrong_lines_tracks_nothing(signed_in):
    response = signed_in.post(
        "/tasks/track/", {"task_ids": '"object": "video",\nplease check this one'}, headers=HX
    )
    html = response.content.decode()
    assert "No task ID could be tracked." in html
    assert not VideoTask.objects.exists()


def _undo_pks(html: str) -> str:
    return html.split('name="tasks" value="', 1)[1].split('"', 1)[0]


def test_undo_stops_tracking_only_the_tasks_just_added(signed_in, owner):
    make_task(owner, "video_before")
    html = signed_in.post(
        "/w/owner/track/", {"task_ids": "video_new_1\nvideo_new_2\nvideo_before"}, headers=HX
    )
    pks = _undo_pks(html.content.decode())
    assert len(pks.split(",")) == 2
    response = signed_in.post("/w/owner/track/undo/", {"tasks": pks}, headers=HX)
    assert response.status_code == 200
    assert "Undone: stopped tracking 2 task(s)" in response.content.decode()
    assert list(VideoTask.objects.values_list("task_id", flat=True)) == ["video_before"]
    stopped = AuditEntry.objects.filter(kind=AuditEntry.Kind.STOPPED_TRACKING)
    assert sorted(stopped.values_list("target", flat=True)) == ["video_new_1", "video_new_2"]


def test_undo_without_htmx_goes_back_to_the_board(signed_in, owner):
    task = make_task(owner, "video_plain")
    response = signed_in.post("/w/owner/track/undo/", {"tasks": str(task.pk)}, follow=True)
    assert response.redirect_chain == [("/w/owner/", 302)]
    assert not VideoTask.objects.exists()


def test_undo_leaves_other_peoples_older_and_other_workspaces_tasks(signed_in, owner, teammate, team):
    theirs = make_task(teammate, "video_theirs", workspace=team)
    old = make_task(owner, "video_old", workspace=team)
    VideoTask.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    elsewhere = make_task(owner, "video_personal")  # the owner's personal workspace
    by_key = make_task(owner, "video_by_key", workspace=team, added_via=VideoTask.AddedVia.API)
    pks = ",".join(str(t.pk) for t in (theirs, old, elsewhere, by_key))
    response = signed_in.post("/w/team/track/undo/", {"tasks": pks}, headers=HX)
    assert "Nothing to undo" in response.content.decode()
    assert VideoTask.objects.count() == 4


def test_undo_needs_the_right_to_stop_tracking(client, owner, teammate, team):
    task = make_task(teammate, "video_viewers", workspace=team)
    join(team, teammate, "viewer")
    client.force_login(teammate)
    assert client.post("/w/team/track/undo/", {"tasks": str(task.pk)}).status_code == 403
    assert VideoTask.objects.filter(pk=task.pk).exists()
    # A viewer sees no Undo: tracking is refused to them in the first place, and the
    # panel offers Undo only to someone who may stop tracking.


def test_an_outsider_cannot_undo(client, outsider, owner, team):
    task = make_task(owner, "video_team", workspace=team)
    client.force_login(outsider)
    assert client.post("/w/team/track/undo/", {"tasks": str(task.pk)}).status_code == 404
    assert VideoTask.objects.filter(pk=task.pk).exists()


def test_a_hostile_paste_of_openers_is_read_in_linear_time():
    # Every line opens a JSON value that never closes: each try reads to the end of the
    # text, so only a few are made (quadratic, this would take minutes).
    found, refused = read_paste("[\n" * 25_000)
    assert found == [] and len(refused) == 25_000
    assert read_paste("[" * 49_999) == ([], [read_line("[" * 49_999, "Line 1")])


def test_without_htmx_the_messages_say_what_was_read(signed_in):
    text = "https://g.example/v1/videos/video_u\n" + WHOLE
    response = signed_in.post("/w/owner/track/", {"task_ids": text}, follow=True)
    html = response.content.decode()
    assert "Line 1: video_u (from a URL)." in html
    assert "Lines 2 to 11: video_68d7512d07848190 (from JSON)." in html


def test_a_json_block_is_quoted_by_its_opening_not_its_brace():
    [item] = read_paste(WHOLE)[0]
    assert item.pasted.startswith('{ "id": "video_68d7512d07848190", "object": "video",')
