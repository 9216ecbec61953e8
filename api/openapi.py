"""The API's OpenAPI 3.1 document, written by hand: five endpoints do not earn a schema
library, and a test (tests/test_api.py) checks that every route of api.urls is here."""

from __future__ import annotations

from typing import Any

from api.payloads import DEFAULT_LIMIT, MAX_LIMIT

_ERROR = {"$ref": "#/components/schemas/Error"}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _answer(description: str, schema: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = {"application/json": {"schema": schema}}
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return answer


_ERRORS = {
    "400": _answer("Bad JSON, an unknown field or parameter, a wrong type or value.", _ERROR),
    "401": _answer("No API key, or an unknown or revoked one.", _ERROR),
    "429": _answer(
        "Too many requests for this key this minute (API_RATE_LIMIT).",
        _ERROR,
        **{"Retry-After": "Seconds until the key may call again."},
    ),
}
_WRITE_ERRORS = {
    **_ERRORS,
    "403": _answer("The key is read-only.", _ERROR),
    "409": _answer("The connection's key can no longer be read, or the workspace has no owner.", _ERROR),
}
_CONNECTION = {
    "type": ["string", "integer", "null"],
    "description": "A connection of the key's workspace, by name or id; null is the deployment's "
    "own provider. Omitted: the workspace's default connection.",
}
_TASK_ID = {
    "name": "task_id",
    "in": "path",
    "required": True,
    "description": "The provider's task ID. It may contain `/`, `+` and `=`; percent-encode it.",
    "schema": {"type": "string"},
}


def document(server: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Video task dashboard API",
            "version": "1",
            "description": "A workspace's tasks and videos, for scripts. Authenticate with "
            "`Authorization: Bearer <key>`; keys are made by a workspace's managers on its "
            "API keys page or with `manage.py create_api_key`. Errors are "
            '`{"error": "...", "code": "..."}`.',
        },
        "servers": [{"url": server.rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": {
            "/tasks": {
                "get": {
                    "operationId": "listTasks",
                    "summary": "The workspace's tasks, newest first, a page at a time.",
                    "parameters": [
                        _query(
                            "status",
                            "Only tasks in this state.",
                            {"enum": ["pending", "processing", "completed", "failed"]},
                        ),
                        _query(
                            "connection", "Only tasks on this connection (name or id).", {"type": "string"}
                        ),
                        _query(
                            "updated_since",
                            "Only tasks changed at or after this ISO-8601 time.",
                            {"type": "string", "format": "date-time"},
                        ),
                        _query(
                            "cursor", "The page after the one whose `next` carried it.", {"type": "string"}
                        ),
                        _query(
                            "limit",
                            f"Tasks a page (default {DEFAULT_LIMIT}).",
                            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                        ),
                    ],
                    "responses": {
                        "200": _answer(
                            "A page of tasks.",
                            {
                                "type": "object",
                                "required": ["data", "next"],
                                "properties": {
                                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/Task"}},
                                    "next": {
                                        "type": ["string", "null"],
                                        "format": "uri",
                                        "description": "The next page's URL; null on the last page.",
                                    },
                                },
                            },
                        ),
                        **_ERRORS,
                    },
                },
                "post": {
                    "operationId": "trackTask",
                    "summary": "Track an existing task ID (idempotent).",
                    "requestBody": _body(
                        {
                            "task_id": {"type": "string", "maxLength": 255},
                            "label": {"type": "string", "maxLength": 200},
                            "connection": _CONNECTION,
                        },
                        ["task_id"],
                    ),
                    "responses": {
                        "201": _answer("Now tracked.", {"$ref": "#/components/schemas/Task"}),
                        "200": _answer(
                            "The workspace tracked it already: that task.",
                            {"$ref": "#/components/schemas/Task"},
                        ),
                        **_WRITE_ERRORS,
                    },
                },
            },
            "/tasks/{task_id}": {
                "parameters": [_TASK_ID],
                "get": {
                    "operationId": "getTask",
                    "summary": "One task, by its provider ID.",
                    "responses": {
                        "200": _answer("The task.", {"$ref": "#/components/schemas/Task"}),
                        "404": _answer("The workspace does not track this ID.", _ERROR),
                        **_ERRORS,
                    },
                },
                "delete": {
                    "operationId": "stopTracking",
                    "summary": "Stop tracking the task (the video stays at the provider).",
                    "responses": {
                        "204": _answer("No longer tracked."),
                        "404": _answer("The workspace does not track this ID.", _ERROR),
                        **_WRITE_ERRORS,
                    },
                },
            },
            "/videos": {
                "post": {
                    "operationId": "startVideo",
                    "summary": "Start a video on a connection; sent once, never retried.",
                    "requestBody": _body(
                        {
                            "prompt": {"type": "string", "maxLength": 4000},
                            "model": {"type": "string", "maxLength": 100},
                            "seconds": {"type": ["string", "number"]},
                            "size": {"type": "string", "pattern": "^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$"},
                            "connection": _CONNECTION,
                        },
                        ["prompt", "model"],
                    ),
                    "responses": {
                        "201": _answer(
                            "The provider made the video: the submission with its task.",
                            {"$ref": "#/components/schemas/Submission"},
                        ),
                        "202": _answer(
                            "The provider's answer was lost; the worker looks for the video in its list. "
                            "Ask GET /videos/{submission_id} later.",
                            {"$ref": "#/components/schemas/Submission"},
                        ),
                        "502": _answer(
                            "The provider refused; nothing was created.",
                            {
                                "allOf": [
                                    _ERROR,
                                    {
                                        "type": "object",
                                        "properties": {
                                            "submission": {"$ref": "#/components/schemas/Submission"}
                                        },
                                    },
                                ]
                            },
                        ),
                        **_WRITE_ERRORS,
                    },
                }
            },
            "/videos/{submission_id}": {
                "parameters": [
                    {"name": "submission_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "get": {
                    "operationId": "getVideoSubmission",
                    "summary": "What came of a POST /videos.",
                    "responses": {
                        "200": _answer("The submission.", {"$ref": "#/components/schemas/Submission"}),
                        "404": _answer("No such submission in the key's workspace.", _ERROR),
                        **_ERRORS,
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": _answer("The OpenAPI document.", {"type": "object"})},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "code"],
                    "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
                },
                "Task": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "description": "The dashboard's own id (its task page)."},
                        "task_id": {"type": "string"},
                        "label": {"type": "string"},
                        "workspace": {"type": "string", "description": "The workspace's slug."},
                        "connection": {
                            "type": ["string", "null"],
                            "description": "Its connection's name; null: the deployment's own.",
                        },
                        "status": {"enum": ["pending", "processing", "completed", "failed"]},
                        "raw_status": {"type": "string"},
                        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                        "model": {"type": "string"},
                        "seconds": {"type": ["number", "null"]},
                        "size": {"type": "string"},
                        "error_code": {"type": "string"},
                        "error_message": {"type": "string"},
                        "metadata": {"type": "object"},
                        "remote_created_at": _TIME,
                        "completed_at": _TIME,
                        "expires_at": _TIME,
                        "last_polled_at": _TIME,
                        "created_at": _TIME,
                        "updated_at": {**_TIME, "description": "When something shown of it last changed."},
                        "added_by": {
                            "type": "object",
                            "properties": {
                                "type": {"enum": ["user", "api_key", "hook"]},
                                "name": {"type": ["string", "null"]},
                            },
                        },
                        "download_url": {
                            "type": ["string", "null"],
                            "format": "uri",
                            "description": "The dashboard's own download (sign-in needed), "
                            "while the video can be fetched.",
                        },
                    },
                },
                "Submission": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "state": {"enum": ["sending", "created", "unknown", "rejected", "not_created"]},
                        "error_code": {"type": "string"},
                        "error_message": {"type": "string"},
                        "prompt": {"type": "string"},
                        "model": {"type": "string"},
                        "seconds": {"type": "string"},
                        "size": {"type": "string"},
                        "connection": {"type": ["string", "null"]},
                        "created_at": _TIME,
                        "task": {"anyOf": [{"$ref": "#/components/schemas/Task"}, {"type": "null"}]},
                    },
                },
            },
        },
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": required,
                    "properties": properties,
                }
            }
        },
    }
