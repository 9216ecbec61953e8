"""What a script sends: a JSON object whose fields are checked for name and type before a
view reads them, and the connection it names. Everything refused is a 400 saying what is
wrong (ApiError), never a 500 or a silent default."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

from api.errors import ApiError, bad_request
from teams.models import ProviderConnection, Workspace
from videos.forms import ConnectionChoiceForm, without_controls

# Tasks a page of GET /tasks.
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

# field name: (accepted JSON types, required)
Schema = dict[str, tuple[tuple[type, ...], bool]]

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", type(None): "null"}


def json_object(request: HttpRequest, schema: Schema) -> dict[str, Any]:
    """The request's body as a JSON object with only the fields of `schema`, each of its
    type; the required ones present."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "too_large", "The request body is too large.") from None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("invalid_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "The body must be a JSON object.")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise bad_request(
            "unknown_field",
            f"Unknown field(s): {', '.join(map(repr, unknown))}; accepted: {', '.join(schema)}.",
        )
    for name, (types, required) in schema.items():
        if name not in data:
            if required:
                raise bad_request("missing_field", f"{name!r} is required.")
            continue
        value = data[name]
        # JSON true/false are bools, which Python also counts as ints.
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise bad_request("invalid_type", f"{name!r} must be {wanted}, not {_json_type(value)}.")
    return data


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"


def text(value: str, name: str, limit: int) -> str:
    """A free-text field: control characters dropped (as the forms do), at most `limit`."""
    value = without_controls(value).strip()
    if len(value) > limit:
        raise bad_request("invalid_value", f"{name!r} is too long (at most {limit} characters).")
    return value


def when(value: str, name: str) -> datetime:
    """An ISO-8601 time with its offset (or Z)."""
    value = value.strip()
    # An unencoded "+01:00" in a query string arrives as " 01:00"; read it as meant.
    if " " in value and "T" in value:
        value = value.replace(" ", "+")
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise bad_request(
            "invalid_value",
            f"{name!r} must be an ISO-8601 time with a UTC offset, e.g. 2026-12-01T17:00:00Z.",
        )
    return parsed


def find_connection(workspace: Workspace, value: str | int) -> ProviderConnection:
    """The workspace's connection named `value`, or with that id; a 400 for anything else
    (another workspace's connection is as unknown as one that does not exist)."""
    connections = workspace.connections.all()
    found = None
    if isinstance(value, int) or (value.isascii() and value.isdigit() and len(value) < 19):
        found = connections.filter(pk=int(value)).first()
    if found is None and isinstance(value, str):
        found = connections.filter(name=value).first()
    if found is None:
        raise bad_request("unknown_connection", f"This workspace has no connection {value!r}.")
    return found


def chosen_connection(
    workspace: Workspace, value: str | int | None, *, given: bool
) -> ProviderConnection | None:
    """The connection a write goes to, by the dashboard forms' rules (ConnectionChoiceForm):
    the one named, else the workspace's default one; None is the deployment's own. `given`
    with a null `value` asks for the deployment's own explicitly."""
    connections = list(workspace.connections.all())
    if not given:
        data: dict[str, str] = {}
    elif value is None:
        data = {"connection": ""}
    else:
        data = {"connection": str(find_connection(workspace, value).pk)}
    form = ConnectionChoiceForm(data, connections=connections)
    if not form.is_valid():
        raise bad_request("unknown_connection", " ".join(form.errors.get("connection", ["Bad connection."])))
    return form.cleaned_data["connection"]


def page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= MAX_LIMIT):
        raise bad_request("invalid_value", f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
    return int(value)
