from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from django.forms import BoundField

from videos.normalize import parse_seconds
from videos.pastes import Found, read_paste

if TYPE_CHECKING:
    from teams.models import ProviderConnection

SIZE_PATTERN = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")

MAX_LINES = 200

# Control characters: the C0 set, DEL and the C1 set. Invisible and meaningless in anything
# a person types here, and NUL cannot be stored by PostgreSQL at all (a query holding one
# fails). Multi-line text keeps its tabs and line breaks.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LAYOUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def without_controls(text: str, *, multiline: bool = False) -> str:
    """`text` with its control characters removed: every text typed into a form or a URL
    goes through here before it reaches a query or a row (the forms through PlainText,
    the dashboard's filters through Listing)."""
    return (_CONTROLS_BUT_LAYOUT if multiline else _CONTROLS).sub("", text)


class PlainText(forms.CharField):
    """A CharField that drops control characters before anything else looks at the value,
    so a stray NUL in a paste is removed rather than a reason to refuse the form."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        if isinstance(value, str):
            value = without_controls(value, multiline=self.multiline)
        return super().to_python(value)


# The "Connection" choice meaning the deployment's own provider (VIDEO_API_BASE_URL).
DEPLOYMENT_DEFAULT = ""


class _ConnectionBoundField(BoundField):
    """The board shows two forms with a connection field: each gets an id of its own
    (its label, its errors and their aria-describedby follow)."""

    @property
    def auto_id(self) -> str:
        auto_id = super().auto_id
        return auto_id.replace(self.html_name, self.form.connection_id) if auto_id else ""


class ConnectionChoiceForm(forms.Form):
    """A form that acts on one of the workspace's provider connections: a "Connection" field
    offering `connections` (the workspace's own, read once by the view) and the deployment's
    default connection when VIDEO_API_BASE_URL is set, preselected with the workspace's
    default. Hidden when there is nothing to choose. Only a connection of the list is ever
    accepted: a pk from another workspace is a form error, never used."""

    # The field's id stem, unique on a page holding several such forms.
    connection_id = "connection"

    def __init__(self, *args: Any, connections: Sequence[ProviderConnection] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = {str(connection.pk): connection for connection in connections}
        choices = [(pk, connection.name) for pk, connection in self.connections.items()]
        # Without any connection of its own the workspace has only the deployment's, even
        # when it is not configured (the worker then says so).
        if settings.VIDEO_API_BASE_URL or not choices:
            choices.insert(0, (DEPLOYMENT_DEFAULT, "Deployment default"))
        default = next((pk for pk, connection in self.connections.items() if connection.is_default), None)
        self.fields["connection"] = forms.ChoiceField(
            label="Connection",
            choices=choices,
            required=False,
            initial=default if default is not None else choices[0][0],
            error_messages={"invalid_choice": "Choose one of this workspace's connections."},
            widget=forms.HiddenInput if len(choices) == 1 else forms.Select,
            bound_field_class=_ConnectionBoundField,
        )

    def clean_connection(self) -> ProviderConnection | None:
        """The chosen connection (None: the deployment's own). A post without the field (a
        script, an older page) gets the preselected one, the workspace's default."""
        if "connection" not in self.data:
            value = self.fields["connection"].initial
        else:
            value = self.cleaned_data.get("connection") or DEPLOYMENT_DEFAULT
        if value == DEPLOYMENT_DEFAULT:
            if self.connections and not settings.VIDEO_API_BASE_URL:
                raise forms.ValidationError("Choose one of this workspace's connections.")
            return None
        return self.connections[value]


class TrackTasksForm(ConnectionChoiceForm):
    """One or many task IDs, one per line; text after the ID on a line is its label.

    A bad line does not sink the others: `entries` holds what can be tracked and
    `rejected` says, line by line, what could not and why.
    """

    connection_id = "track_connection"

    task_ids = forms.CharField(
        label="Task IDs",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "video_68d7512d07848190  Optional label"}),
        max_length=50_000,
        help_text=(
            "One per line; anything after the ID on the same line becomes its label. "
            "A video's address or its JSON works too: the ID is taken from it."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A NUL byte on one pasted line is that line's problem (reported below), not a
        # reason to refuse the whole paste, as Django's default validator would.
        field = self.fields["task_ids"]
        field.validators = [v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)]

    def clean_task_ids(self) -> str:
        text = self.cleaned_data["task_ids"]
        # Addresses and JSON give up their ID here; lines that name no task are refused,
        # each with its reason (videos.pastes).
        found, refused = read_paste(text)
        if len(found) + len(refused) > MAX_LINES:
            raise forms.ValidationError(
                f"At most {MAX_LINES} task IDs at a time; you pasted {len(found) + len(refused)}."
            )
        self.found: list[Found] = found
        self.entries: list[tuple[str, str]] = [(item.task_id, item.label) for item in found]
        self.rejected: list[str] = [str(problem) for problem in refused]
        if not self.entries:
            raise forms.ValidationError(["No task ID could be tracked.", *self.rejected])
        return text


# What a reference image may be: checked by its first bytes, not by the name or the
# browser's claimed type.
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"RIFF": "image/webp",
}


class CreateVideoForm(ConnectionChoiceForm):
    """A new video: prompt, model, duration, size, and an optional reference image.

    The choices come from VIDEO_MODELS, VIDEO_SECONDS and VIDEO_SIZES; where a list is not
    configured the field is free text, because providers differ.
    """

    connection_id = "create_connection"

    prompt = PlainText(multiline=True, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    model = PlainText(max_length=100)
    seconds = PlainText(max_length=16, required=False, label="Duration (seconds)")
    size = PlainText(max_length=32, required=False, help_text="WIDTHxHEIGHT, e.g. 1280x720")
    input_reference = forms.FileField(required=False, label="Reference image (optional)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, values, blank in (
            ("model", settings.VIDEO_MODELS, False),
            ("seconds", settings.VIDEO_SECONDS, True),
            ("size", settings.VIDEO_SIZES, True),
        ):
            if values:
                field = self.fields[name]
                choices = [(v, v) for v in values]
                self.fields[name] = forms.ChoiceField(
                    label=field.label,
                    choices=([("", "Provider default")] if blank else []) + choices,
                    required=not blank,
                )
        self.fields["input_reference"].widget.attrs["accept"] = "image/png,image/jpeg,image/webp"

    def clean_seconds(self) -> str:
        seconds = self.cleaned_data["seconds"].strip()
        if seconds and parse_seconds(seconds) is None:
            raise forms.ValidationError("Give the duration as a number of seconds, e.g. 8.")
        return seconds

    def clean_size(self) -> str:
        size = self.cleaned_data["size"].strip().lower()
        if size and not SIZE_PATTERN.fullmatch(size):
            raise forms.ValidationError("Give the size as WIDTHxHEIGHT, e.g. 1280x720.")
        return size

    def clean_input_reference(self) -> tuple[str, bytes, str] | None:
        upload = self.cleaned_data.get("input_reference")
        if not upload:
            return None
        if upload.size > settings.VIDEO_REFERENCE_MAX_BYTES:
            limit = settings.VIDEO_REFERENCE_MAX_BYTES // (1024 * 1024)
            raise forms.ValidationError(f"The reference image is too large (at most {limit} MB).")
        data = upload.read()
        for signature, content_type in IMAGE_SIGNATURES.items():
            if data.startswith(signature) and (content_type != "image/webp" or data[8:12] == b"WEBP"):
                return (upload.name or "reference", data, content_type)
        raise forms.ValidationError("The reference must be a PNG, JPEG or WebP image.")


def create_initial(submission: Any) -> dict[str, str]:
    """The create form's initial values for starting `submission` (a Submission) again: its
    prompt, model, duration, size and connection, all editable. The reference image is not
    kept, so it is attached again by hand."""
    return {
        "prompt": submission.prompt,
        "model": submission.model,
        "seconds": submission.seconds,
        "size": submission.size,
        "connection": str(submission.connection_id) if submission.connection_id else DEPLOYMENT_DEFAULT,
    }


class RemixForm(forms.Form):
    prompt = PlainText(
        multiline=True, widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, label="New prompt"
    )
