"""Provider webhooks in: POST /hooks/<token>/ signed per Standard Webhooks or OpenRouter.

Real HTTP on loopback (pytest-django's live_server, with requests) for the schemes, the
refusals and the body limit; the test client for the connection page. Every refusal is
checked to write nothing (rows counted), and the secret to appear nowhere: not in a page
after saving, not in a log line, not in the database in plain text.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable

import pytest
import requests
from django.db import connection as db
from django.urls import reverse
from django.utils import timezone
from django.utils.datastructures import CaseInsensitiveMapping

from teams import connection_forms, hooks
from teams.models import AuditEntry, HookDelivery, ProviderConnection, Role
from tests.pages import join, make_task
from videos.models import TaskEvent, VideoTask

# Distinctive, so a leak is easy to find; 32 bytes, as generated secrets are.
RAW_KEY = b"hook-secret-bytes-0123456789abcd"
WHSEC = "whsec_" + base64.b64encode(RAW_KEY).decode()
OPENROUTER_SECRET = "or-signing-secret+Xy/9=Qp"


@pytest.fixture
def connection(team, owner) -> ProviderConnection:
    made = ProviderConnection(
        workspace=team, name="Gateway", base_url="https://gateway.example/v1", created_by=owner
    )
    made.set_api_key("sk-hooks-0123456789")
    made.set_hook_secret(WHSEC)
    made.save()
    return made


def standard_headers(
    secret: str, body: bytes, *, event_id: str = "", at: int | None = None
) -> dict[str, str]:
    event_id = event_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()) if at is None else at)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": hooks.standard_signature(secret, event_id, timestamp, body),
        "content-type": "application/json",
    }


def openrouter_headers(secret: str, body: bytes, *, key: str = "", at: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    headers = {
        "X-OpenRouter-Signature": hooks.openrouter_signature(secret, timestamp, body),
        "content-type": "application/json",
    }
    if key:
        headers["X-OpenRouter-Idempotency-Key"] = key
    return headers


def event(kind: str = "video.completed", video_id: str = "video_hook_1") -> bytes:
    return json.dumps({"id": "evt_1", "type": kind, "created_at": 1, "data": {"id": video_id}}).encode()


def counts() -> tuple[int, ...]:
    """Rows a webhook may write: refusals must leave every one of these as it was."""
    return (
        HookDelivery.objects.count(),
        VideoTask.objects.count(),
        TaskEvent.objects.count(),
        AuditEntry.objects.count(),
        ProviderConnection.objects.exclude(last_hook_at=None).count(),
        VideoTask.objects.exclude(next_poll_at=None).count(),
    )


@pytest.fixture
def post(live_server, connection) -> Callable[..., requests.Response]:
    def send(body: bytes, headers: dict[str, str], token: str | None = None) -> requests.Response:
        url = live_server.url + reverse("provider_hook", args=[token or connection.hook_token])
        return requests.post(url, data=body, headers=headers, timeout=10)

    return send


# -- Standard Webhooks (OpenAI's video events) ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_standard_event_about_a_known_task_makes_it_due_now(post, connection, owner, team):
    task = make_task(owner, "video_hook_1", workspace=team, connection=connection)
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=timezone.now() + timezone.timedelta(hours=1))
    body = event("video.completed", "video_hook_1")

    before = timezone.now()
    answer = post(body, standard_headers(WHSEC, body))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": "polling"}
    task.refresh_from_db()
    assert before <= task.next_poll_at <= timezone.now()
    # The event's word is not the state: the provider's answer to the poll will be.
    assert task.status == "pending"
    connection.refresh_from_db()
    assert before <= connection.last_hook_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_standard_event_about_an_unknown_id_tracks_it_on_the_connection(post, connection, owner, team):
    body = event("video.failed", "video/new+1=")
    answer = post(body, standard_headers(WHSEC, body))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"result": "tracking"}
    task = VideoTask.objects.get(task_id="video/new+1=")
    assert (task.workspace, task.connection, task.owner) == (team, connection, owner)
    assert task.added_via == VideoTask.AddedVia.HOOK
    assert task.next_poll_at is None  # due at once
    assert task.events.get().message == "Tracked from the provider's webhook."


@pytest.mark.django_db(transaction=True)
def test_an_unknown_id_is_owned_by_a_workspace_owner_when_the_creator_is_gone(post, connection, owner, team):
    ProviderConnection.objects.filter(pk=connection.pk).update(created_by=None)
    body = event()
    assert post(body, standard_headers(WHSEC, body)).status_code == 200
    assert VideoTask.objects.get(task_id="video_hook_1").owner == owner


@pytest.mark.django_db(transaction=True)
def test_several_signatures_one_matching(post, connection, owner, team):
    body = event()
    headers = standard_headers(WHSEC, body)
    wrong = "v1," + base64.b64encode(b"x" * 32).decode()
    headers["webhook-signature"] = f"v1a,abc {wrong} {headers['webhook-signature']} v1,notbase64"
    assert post(body, headers).status_code == 200
    assert VideoTask.objects.filter(task_id="video_hook_1").exists()


@pytest.mark.django_db(transaction=True)
def test_a_secret_without_the_prefix_is_base64_decoded_like_the_spec_libraries(post, connection):
    bare = base64.b64encode(RAW_KEY).decode()
    ProviderConnection.objects.filter(pk=connection.pk).update(hook_secret_encrypted="")
    connection.set_hook_secret(bare)
    connection.save()
    body = event()
    # Signed by a sender holding the whsec_ form: the same key bytes.
    assert post(body, standard_headers(WHSEC, body)).status_code == 200


def test_secret_keys():
    assert hooks.standard_key(WHSEC) == RAW_KEY
    assert hooks.standard_key(base64.b64encode(RAW_KEY).decode()) == RAW_KEY
    # Unpadded base64, as some dashboards show it.
    assert hooks.standard_key("whsec_" + base64.b64encode(RAW_KEY).decode().rstrip("=")) == RAW_KEY
    # Not base64 at all: a secret typed into a gateway that lets you choose, used as is.
    assert hooks.standard_key("my secret!") == b"my secret!"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(
            lambda h, b: {**h, "webhook-signature": "v1," + base64.b64encode(b"\0" * 32).decode()}, id="wrong"
        ),
        pytest.param(
            lambda h, b: standard_headers("whsec_" + base64.b64encode(b"other-key").decode(), b),
            id="other-key",
        ),
        pytest.param(lambda h, b: {k: v for k, v in h.items() if k != "webhook-signature"}, id="missing"),
        pytest.param(lambda h, b: {k: v for k, v in h.items() if k != "webhook-id"}, id="no-id"),
        pytest.param(lambda h, b: {**h, "webhook-id": h["webhook-id"] + "x"}, id="id-changed"),
        pytest.param(
            lambda h, b: {**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")},
            id="version",
        ),
        pytest.param(lambda h, b: {**h, "webhook-timestamp": "soon"}, id="bad-time"),
    ],
)
def test_bad_standard_signatures_are_refused_and_write_nothing(post, connection, spoil, caplog):
    body = event()
    before = counts()
    with caplog.at_level(logging.DEBUG):
        answer = post(body, spoil(standard_headers(WHSEC, body), body))
    assert answer.status_code == 401
    assert counts() == before
    assert_no_secret(answer.text + caplog.text)


@pytest.mark.django_db(transaction=True)
def test_a_changed_body_is_refused(post, connection):
    body = event()
    headers = standard_headers(WHSEC, body)
    assert post(event(video_id="video_other"), headers).status_code == 401
    assert not VideoTask.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("offset", [-305, 305, -3600])
def test_stale_standard_events_are_refused(post, connection, offset):
    body = event()
    before = counts()
    answer = post(body, standard_headers(WHSEC, body, at=int(time.time()) + offset))
    assert answer.status_code == 401
    assert "stale" in answer.json()["error"].lower()
    assert counts() == before


def test_the_time_window_is_five_minutes_either_way():
    body = event()
    headers = CaseInsensitiveMapping(standard_headers(WHSEC, body, at=1_000_000))
    for now in (1_000_000 - 300, 1_000_000 + 300):
        assert hooks.verify(WHSEC, headers, body, now).event_id == headers["webhook-id"]
    for now in (1_000_000 - 301, 1_000_000 + 301):
        with pytest.raises(hooks.Refused, match="Stale"):
            hooks.verify(WHSEC, headers, body, now)
    signed = CaseInsensitiveMapping(openrouter_headers(OPENROUTER_SECRET, body, at=1_000_000))
    assert hooks.verify(OPENROUTER_SECRET, signed, body, 1_000_300).scheme == "openrouter"
    with pytest.raises(hooks.Refused, match="Stale"):
        hooks.verify(OPENROUTER_SECRET, signed, body, 1_000_301)


@pytest.mark.django_db(transaction=True)
def test_a_replayed_standard_event_is_answered_but_acted_on_once(post, connection, owner, team):
    body = event()
    headers = standard_headers(WHSEC, body, event_id="msg_replayed")
    assert post(body, headers).json() == {"result": "tracking"}
    task = VideoTask.objects.get(task_id="video_hook_1")
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=timezone.now() + timezone.timedelta(hours=1))
    connection.refresh_from_db()
    first_seen = connection.last_hook_at
    before = counts()

    again = post(body, headers)

    assert again.status_code == 200
    assert again.json() == {"result": "duplicate"}
    assert counts() == before
    task.refresh_from_db()
    assert task.next_poll_at > timezone.now()  # not made due again
    connection.refresh_from_db()
    assert connection.last_hook_at == first_seen
    # The same ID on another connection is that connection's own business.
    assert HookDelivery.objects.filter(event_id="msg_replayed").count() == 1


# -- OpenRouter ---------------------------------------------------------------------------


@pytest.fixture
def openrouter(connection) -> ProviderConnection:
    connection.set_hook_secret(OPENROUTER_SECRET)
    connection.save()
    return connection


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["completed", "failed", "cancelled", "expired"])
def test_openrouter_events(post, openrouter, owner, team, kind):
    task = make_task(owner, "gen-abc", workspace=team, connection=openrouter)
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=timezone.now() + timezone.timedelta(hours=1))
    body = event(f"video.generation.{kind}", "gen-abc")
    answer = post(body, openrouter_headers(OPENROUTER_SECRET, body, key="idem-1"))
    assert answer.status_code == 200, answer.text
    task.refresh_from_db()
    assert task.next_poll_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_openrouter_unknown_id_is_tracked(post, openrouter, team):
    body = event("video.generation.completed", "gen-new")
    assert post(body, openrouter_headers(OPENROUTER_SECRET, body, key="idem-2")).json() == {
        "result": "tracking"
    }
    assert VideoTask.objects.get(task_id="gen-new").added_via == "hook"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(
            lambda h: {**h, "X-OpenRouter-Signature": h["X-OpenRouter-Signature"][:-4] + "0000"}, id="wrong"
        ),
        pytest.param(
            lambda h: {**h, "X-OpenRouter-Signature": h["X-OpenRouter-Signature"].split(",")[0]}, id="no-v1"
        ),
        pytest.param(
            lambda h: {**h, "X-OpenRouter-Signature": h["X-OpenRouter-Signature"].split(",")[1]}, id="no-t"
        ),
        pytest.param(lambda h: {k: v for k, v in h.items() if k != "X-OpenRouter-Signature"}, id="missing"),
    ],
)
def test_bad_openrouter_signatures_are_refused(post, openrouter, spoil):
    body = event("video.generation.completed")
    before = counts()
    assert post(body, spoil(openrouter_headers(OPENROUTER_SECRET, body, key="idem-3"))).status_code == 401
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_openrouter_signature_is_keyed_with_the_secret_as_given(post, openrouter):
    # Not base64-decoded: a whsec_-style reading of the secret gives another key.
    body = event("video.generation.completed")
    headers = openrouter_headers(OPENROUTER_SECRET, body)
    assert post(body, headers).status_code == 200
    wrong = openrouter_headers(base64.b64encode(OPENROUTER_SECRET.encode()).decode(), body)
    assert post(body, wrong).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_stale_openrouter_event(post, openrouter):
    body = event("video.generation.completed")
    before = counts()
    answer = post(body, openrouter_headers(OPENROUTER_SECRET, body, at=int(time.time()) - 600))
    assert answer.status_code == 401
    assert "stale" in answer.text.lower()
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_replayed_openrouter_event(post, openrouter, owner, team):
    body = event("video.generation.completed", "gen-once")
    headers = openrouter_headers(OPENROUTER_SECRET, body, key="idem-once")
    assert post(body, headers).json() == {"result": "tracking"}
    before = counts()
    # Re-signed with a fresh timestamp, same idempotency key: the provider's retry.
    retry = openrouter_headers(OPENROUTER_SECRET, body, key="idem-once")
    assert post(body, retry).json() == {"result": "duplicate"}
    # Without an idempotency key, a byte-for-byte replay is still recognised.
    bare = openrouter_headers(OPENROUTER_SECRET, body)
    assert post(body, bare).status_code == 200
    after_first_bare = counts()
    assert post(body, bare).json() == {"result": "duplicate"}
    assert counts() == after_first_bare
    assert counts()[1:4] == before[1:4]  # still one task, one event, one audit entry


# -- Refusals that come before any signature ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_unknown_token_is_404(post, connection):
    body = event()
    before = counts()
    assert post(body, standard_headers(WHSEC, body), token="not-a-token").status_code == 404
    assert post(body, standard_headers(WHSEC, body), token="x" * 80).status_code == 404
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_oversize_body_is_413_and_writes_nothing(post, connection, live_server):
    before = counts()
    big = json.dumps(
        {"type": "video.completed", "data": {"id": "video_big"}, "pad": "x" * (64 * 1024)}
    ).encode()
    assert post(big, standard_headers(WHSEC, big)).status_code == 413
    # A body sent in chunks (no Content-Length) is cut off while read, not trusted.
    url = live_server.url + reverse("provider_hook", args=[connection.hook_token])
    chunks = (big[i : i + 4096] for i in range(0, len(big), 4096))
    answer = requests.post(url, data=chunks, headers=standard_headers(WHSEC, big), timeout=10)
    assert answer.status_code in (401, 413)  # Django's dev server reads no chunked body at all
    assert counts() == before
    # Exactly at the limit is fine.
    pad = 64 * 1024 - len(json.dumps({"type": "video.completed", "data": {"id": "video_big"}, "pad": ""}))
    exact = json.dumps({"type": "video.completed", "data": {"id": "video_big"}, "pad": "x" * pad}).encode()
    assert len(exact) == 64 * 1024
    assert post(exact, standard_headers(WHSEC, exact)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_bad_json_with_a_good_signature_is_400(post, connection):
    before = counts()
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        assert post(body, standard_headers(WHSEC, body)).status_code == 400
    missing_id = json.dumps({"type": "video.completed", "data": {}}).encode()
    assert post(missing_id, standard_headers(WHSEC, missing_id)).status_code == 400
    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_unknown_event_type_is_200_and_ignored(post, connection):
    body = event("response.completed", "resp_1")
    answer = post(body, standard_headers(WHSEC, body))
    assert answer.status_code == 200
    assert answer.json() == {"result": "ignored"}
    assert not VideoTask.objects.exists()
    connection.refresh_from_db()
    assert connection.last_hook_at is not None  # verified all the same: push works


@pytest.mark.django_db(transaction=True)
def test_no_secret_set_refuses_everything(post, connection):
    connection.set_hook_secret("")
    connection.save()
    body = event()
    # Even an event signed with an empty key.
    answer = post(body, standard_headers("", body))
    assert answer.status_code == 401
    assert answer.json() == {"error": "Bad signature."}
    assert not VideoTask.objects.exists()


def test_get_is_not_allowed(client, connection):
    assert client.get(reverse("provider_hook", args=[connection.hook_token])).status_code == 405


def test_a_task_tracked_on_another_connection_is_left_alone(client, connection, owner, team):
    make_task(owner, "video_hook_1", workspace=team)  # the deployment's own provider
    body = event()
    answer = client.post(
        reverse("provider_hook", args=[connection.hook_token]),
        body,
        content_type="application/json",
        headers=standard_headers(WHSEC, body),
    )
    assert answer.json() == {"result": "tracked on another connection"}
    assert VideoTask.objects.count() == 1


def test_a_finished_task_stays_finished(client, connection, owner, team):
    task = make_task(
        owner, "video_hook_1", workspace=team, connection=connection, status="completed", progress=100
    )
    body = event()
    answer = client.post(
        reverse("provider_hook", args=[connection.hook_token]),
        body,
        content_type="application/json",
        headers=standard_headers(WHSEC, body),
    )
    assert answer.json() == {"result": "finished"}
    task.refresh_from_db()
    assert task.status == "completed"


def test_old_event_ids_are_forgotten_after_a_day(client, connection):
    old = HookDelivery.objects.create(
        connection=connection, event_id="msg_old", received_at=timezone.now() - timezone.timedelta(days=2)
    )
    body = event("something.else")
    client.post(
        reverse("provider_hook", args=[connection.hook_token]),
        body,
        content_type="application/json",
        headers=standard_headers(WHSEC, body),
    )
    assert not HookDelivery.objects.filter(pk=old.pk).exists()
    assert HookDelivery.objects.count() == 1


# -- The connection page ------------------------------------------------------------------


def assert_no_secret(text: str, secret: str = WHSEC) -> None:
    for form in (secret, secret.removeprefix("whsec_"), base64.b64encode(secret.encode()).decode()):
        assert form not in text


def test_the_edit_page_shows_the_hook_to_managers(signed_in, connection):
    page = signed_in.get(reverse("teams:connection_edit", args=["team", connection.pk]))
    html = page.content.decode()
    assert f"http://testserver/hooks/{connection.hook_token}/" in html
    assert "set (hidden)" in html
    assert "none yet" in html
    assert_no_secret(html)


def test_members_do_not_see_the_hook(client, teammate, connection):
    client.force_login(teammate)
    assert client.get(reverse("teams:connection_edit", args=["team", connection.pk])).status_code == 403
    listing = client.get(reverse("teams:connections", args=["team"])).content.decode()
    assert connection.hook_token not in listing


def test_pasting_a_secret_stores_it_encrypted_and_never_shows_it(signed_in, connection, caplog, monkeypatch):
    monkeypatch.setattr(connection_forms, "resolve", lambda host, port: ["93.184.216.34"])
    pasted = "whsec_" + base64.b64encode(b"pasted-secret-from-the-provider!").decode()
    with caplog.at_level(logging.DEBUG):
        answer = signed_in.post(
            reverse("teams:connection_edit", args=["team", connection.pk]),
            {
                "name": "Gateway",
                "base_url": "https://gateway.example/v1",
                "max_rps": "0",
                "hook_secret": pasted,
            },
            follow=True,
        )
        page = signed_in.get(reverse("teams:connection_edit", args=["team", connection.pk]))
    assert answer.status_code == 200
    connection.refresh_from_db()
    assert connection.hook_secret() == pasted
    for text in (answer.content.decode(), page.content.decode(), caplog.text):
        assert_no_secret(text, pasted)
    assert "webhook secret replaced" in AuditEntry.objects.values_list("detail", flat=True).first()
    assert_not_in_database(pasted)


def test_generating_a_secret_shows_it_once(signed_in, connection, caplog):
    url = reverse("teams:connection_hook", args=["team", connection.pk])
    with caplog.at_level(logging.DEBUG):
        answer = signed_in.post(url, {"action": "generate_secret"})
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    connection.refresh_from_db()
    secret = connection.hook_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    assert secret in html
    # Never again: not on the next visit, not in the log, not in the database as typed.
    again = signed_in.get(reverse("teams:connection_edit", args=["team", connection.pk])).content.decode()
    assert_no_secret(again, secret)
    assert_no_secret(caplog.text, secret)
    assert_not_in_database(secret)


def test_a_new_address_retires_the_old_one(signed_in, client, connection):
    old = connection.hook_token
    answer = signed_in.post(
        reverse("teams:connection_hook", args=["team", connection.pk]), {"action": "new_address"}
    )
    assert answer.status_code == 302
    connection.refresh_from_db()
    assert connection.hook_token != old
    assert len(connection.hook_token) >= 32
    body = event()
    headers = standard_headers(WHSEC, body)
    assert (
        client.post(
            reverse("provider_hook", args=[old]), body, content_type="application/json", headers=headers
        ).status_code
        == 404
    )
    assert AuditEntry.objects.filter(detail="webhook address replaced").exists()


def test_managers_only_act_on_the_hook(client, teammate, team, connection):
    url = reverse("teams:connection_hook", args=["team", connection.pk])
    client.force_login(teammate)
    assert client.post(url, {"action": "generate_secret"}).status_code == 403
    join(team, teammate, Role.MANAGER)
    assert client.post(url, {"action": "generate_secret"}).status_code == 200


def test_every_connection_gets_its_own_token(team):
    made = [
        ProviderConnection.objects.create(workspace=team, name=f"C{n}", base_url="https://g.example/v1")
        for n in range(3)
    ]
    tokens = {connection.hook_token for connection in made}
    assert len(tokens) == 3
    assert all(len(token) >= 32 and token.replace("-", "").replace("_", "").isalnum() for token in tokens)


def test_hook_secret_is_rotated_by_reencrypt():
    from dashboard.encryption import ENCRYPTED_FIELDS

    assert ("teams.ProviderConnection", "hook_secret_encrypted") in ENCRYPTED_FIELDS


def assert_not_in_database(secret: str) -> None:
    """Nowhere in any text column of any table (the test_secrets_at_rest spirit)."""
    with db.cursor() as cursor:
        stored = ProviderConnection.objects.values_list("hook_secret_encrypted", flat=True)
        assert all(secret not in value for value in stored)
        for table in db.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 -- names from introspection
            for row in cursor.fetchall():
                dumped = " ".join(str(value) for value in row)
                assert secret not in dumped, table
                assert secret.removeprefix("whsec_") not in dumped, table


# -- End to end: the event, then the worker's poll ----------------------------------------


def test_the_worker_polls_at_once_and_takes_the_state_from_the_provider(client, provider, owner, team):
    from tests.fake_provider import PROVIDER_KEY, video
    from videos.client import VideoAPIClient
    from videos.polling import Poller

    gateway = ProviderConnection(
        workspace=team, name="Loopback", base_url=provider.base_url, created_by=owner
    )
    gateway.set_api_key(PROVIDER_KEY)
    gateway.set_hook_secret(WHSEC)
    gateway.save()
    later = timezone.now() + timezone.timedelta(hours=1)
    done = make_task(
        owner, "video_done", workspace=team, connection=gateway, status="processing", next_poll_at=later
    )
    # The event says "completed"; the provider, asked, says it is still running: it wins.
    running = make_task(
        owner, "video_run", workspace=team, connection=gateway, status="processing", next_poll_at=later
    )
    provider.script("video_done", video("video_done", "completed", 100, url="https://cdn.example/v.mp4"))
    provider.script("video_run", video("video_run", "in_progress", 60))
    for task_id in ("video_done", "video_run", "video_new"):
        body = event("video.completed", task_id)
        answer = client.post(
            reverse("provider_hook", args=[gateway.hook_token]),
            body,
            content_type="application/json",
            headers=standard_headers(WHSEC, body),
        )
        assert answer.status_code == 200
    provider.script("video_new", video("video_new", "queued", 0))

    deployment = VideoAPIClient(provider.base_url, PROVIDER_KEY, timeout=5.0, connect_timeout=2.0)
    report = Poller(deployment, interval=5.0, concurrency=2, rng=lambda: 0.5).run_pass()

    assert report.polled == 3
    assert sorted(seen.task_id for seen in provider.requests) == ["video_done", "video_new", "video_run"]
    done.refresh_from_db()
    running.refresh_from_db()
    assert (done.status, done.url) == ("completed", "https://cdn.example/v.mp4")
    assert (running.status, running.progress) == ("processing", 60)
    new = VideoTask.objects.get(task_id="video_new")
    assert (new.status, new.connection, new.added_via) == ("pending", gateway, "hook")
