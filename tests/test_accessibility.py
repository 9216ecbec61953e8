"""The dashboard's forms point assistive technology at text that exists: every
aria-describedby (and aria-labelledby) names an id on the same page, with and without errors."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from videos.models import Status, VideoTask

HX = {"HX-Request": "true"}


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            elif name in ("aria-describedby", "aria-labelledby") and value is not None:
                self.references += [(name, ref) for ref in value.split()] or [(name, "")]


def dangling(html: str) -> list[tuple[str, str]]:
    """The (attribute, id) pairs that name no element of `html`."""
    parser = _References()
    parser.feed(html)
    return [(name, ref) for name, ref in parser.references if ref not in parser.ids]


def references(html: str) -> list[tuple[str, str]]:
    parser = _References()
    parser.feed(html)
    return parser.references


@pytest.fixture
def free_text(settings):
    """No configured lists: model, duration and size are free text, and size has help text."""
    settings.VIDEO_MODELS = []
    settings.VIDEO_SIZES = []
    settings.VIDEO_SECONDS = []


def test_the_dashboard_describes_fields_with_text_that_exists(signed_in, free_text):
    html = signed_in.get("/").content.decode()
    assert ("aria-describedby", "id_task_ids_helptext") in references(html)
    assert ("aria-describedby", "id_size_helptext") in references(html)
    assert dangling(html) == []


def test_a_track_form_with_errors_names_them(signed_in, free_text):
    html = signed_in.post("/tasks/track/", {"task_ids": ""}, headers=HX).content.decode()
    assert ("aria-describedby", "id_task_ids_error") in references(html)
    assert dangling(html) == []


def test_a_create_form_with_errors_names_them(signed_in, free_text):
    data = {"prompt": "", "model": "veo-3", "size": "big", "seconds": "ten"}
    html = signed_in.post("/videos/new/", data, headers=HX).content.decode()
    described = references(html)
    for field in ("prompt", "size", "seconds"):
        assert ("aria-describedby", f"id_{field}_error") in described
    assert dangling(html) == []


def test_the_task_page_describes_fields_with_text_that_exists(signed_in, owner):
    task = VideoTask.objects.create(owner=owner, task_id="video_a11y", status=Status.COMPLETED, progress=100)
    assert dangling(signed_in.get(f"/tasks/{task.pk}/").content.decode()) == []
