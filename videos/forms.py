from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator

from videos.client import InvalidTaskId, validate_task_id

MAX_LINES = 200


class TrackTasksForm(forms.Form):
    """One or many task IDs, one per line; text after the ID on a line is its label.

    A bad line does not sink the others: `entries` holds what can be tracked and
    `rejected` says, line by line, what could not and why.
    """

    task_ids = forms.CharField(
        label="Task IDs",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "video_68d7512d07848190  Optional label"}),
        max_length=50_000,
        help_text="One per line. Anything after the ID on the same line becomes its label.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A NUL byte on one pasted line is that line's problem (reported below), not a
        # reason to refuse the whole paste, as Django's default validator would.
        field = self.fields["task_ids"]
        field.validators = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]

    def clean_task_ids(self) -> str:
        text = self.cleaned_data["task_ids"]
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > MAX_LINES:
            raise forms.ValidationError(f"At most {MAX_LINES} task IDs at a time; you pasted {len(lines)}.")
        self.entries: list[tuple[str, str]] = []
        self.rejected: list[str] = []
        for number, line in enumerate(lines, start=1):
            task_id, *rest = line.split(maxsplit=1)
            # Labels are free text, but control characters (NUL above all, which PostgreSQL
            # refuses) have no place in one.
            label = "".join(ch for ch in rest[0] if ch.isprintable()) if rest else ""
            try:
                self.entries.append((validate_task_id(task_id), label.strip()[:200]))
            except InvalidTaskId as error:
                shown = task_id if len(task_id) <= 60 else task_id[:57] + "…"
                self.rejected.append(f"Line {number} ({shown!r}): {error}")
        if not self.entries:
            raise forms.ValidationError(["No task ID could be tracked.", *self.rejected])
        return text
