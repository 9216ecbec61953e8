"""The JSON API (/api/v1/): over real HTTP on loopback (pytest-django's live_server and
requests) for each status code it answers with, and through Django's test client for the
rest: listing and its cursor, filters, tracking, stopping, starting a video on a real fake
provider, the OpenAPI document."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone

from api.models import ApiKey
from teams.models import ProviderConnection, Workspace
from tests.fake_provider import PROVIDER_KEY, Reply, video
from tests.pages import join, make_task
from videos.client import VideoAPIClient
from videos.models import Status, Submission, VideoTask

SLASHY = "video/ab+c=="  # needs percent-encoding, and holds every troublesome character


def issue(workspace, user, *, read_only=False, name="ci"):
    _key, plaintext = ApiKey.issue(workspace, name, read_only=read_only, created_by=user)
    return plaintext


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def rw(team, owner):
    return issue(team, owner)


@pytest.fixture
def ro(team, owner):
    return issue(team, owner, read_only=True, name="dashboards")


# --- over real HTTP --------------------------------------------------------------------


def live(live_server, name: str, *args) -> str:
    return live_server.url + reverse(name, args=args)


@pytest.mark.django_db(transaction=True)
def test_live_200_lists_the_workspace_tasks_and_a_session_cookie_alone_is_401(
    live_server, client, team, owner, rw
):
    make_task(owner, "video_listed", workspace=team)
    answer = requests.get(live(live_server, "api:tasks"), headers=bearer(rw), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert [task["task_id"] for task in answer.json()["data"]] == ["video_listed"]
    assert answer.json()["next"] is None

    # A signed-in browser's cookie is not an API credential.
    client.force_login(owner)
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    assert "sessionid" in cookies
    refused = requests.get(live(live_server, "api:tasks"), cookies=cookies, timeout=10)
    assert refused.status_code == 401
    assert refused.json()["code"] == "missing_key"
    assert "video_listed" not in refused.text
    posted = requests.post(
        live(live_server, "api:tasks"), cookies=cookies, json={"task_id": "video_cookie"}, timeout=10
    )
    assert posted.status_code == 401
    assert not VideoTask.objects.filter(task_id="video_cookie").exists()


@pytest.mark.django_db(transaction=True)
def test_live_201_then_200_for_the_same_id_and_ids_with_slash_plus_equals(live_server, team, owner, rw):
    url = live(live_server, "api:tasks")
    first = requests.post(url, headers=bearer(rw), json={"task_id": SLASHY, "label": "Dusk"}, timeout=10)
    assert first.status_code == 201, first.text
    again = requests.post(url, headers=bearer(rw), json={"task_id": SLASHY, "label": "Other"}, timeout=10)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["label"] == "Dusk"
    assert VideoTask.objects.filter(workspace=team, task_id=SLASHY).count() == 1

    # The ID percent-encoded, and as it is (slashes and all): the same task either way.
    for path in (quote(SLASHY, safe=""), SLASHY):
        one = requests.get(f"{url}/{path}", headers=bearer(rw), timeout=10)
        assert one.status_code == 200, path
        assert one.json()["task_id"] == SLASHY
        assert one.json()["added_by"] == {"type": "api_key", "name": "ci"}


@pytest.mark.django_db(transaction=True)
def test_live_204_stops_tracking(live_server, team, owner, rw):
    make_task(owner, SLASHY, workspace=team)
    url = live(live_server, "api:task", SLASHY)
    answer = requests.delete(url, headers=bearer(rw), timeout=10)
    assert answer.status_code == 204
    assert answer.content == b""
    assert not VideoTask.objects.filter(task_id=SLASHY).exists()
    assert requests.delete(url, headers=bearer(rw), timeout=10).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_live_400_says_what_is_wrong(live_server, team, rw):
    url = live(live_server, "api:tasks")
    cases = [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"[1]", "invalid_json", "JSON object"),
        (json.dumps({"task_id": "v", "colour": "red"}).encode(), "unknown_field", "'colour'"),
        (json.dumps({"task_id": 42}).encode(), "invalid_type", "'task_id' must be a string, not a number"),
        (json.dumps({"task_id": "v", "label": True}).encode(), "invalid_type", "not a boolean"),
        (json.dumps({}).encode(), "missing_field", "'task_id' is required"),
        (json.dumps({"task_id": ".."}).encode(), "invalid_task_id", "dots"),
        (json.dumps({"task_id": "v", "connection": "nope"}).encode(), "unknown_connection", "'nope'"),
    ]
    for body, code, words in cases:
        answer = requests.post(
            url, headers={**bearer(rw), "Content-Type": "application/json"}, data=body, timeout=10
        )
        assert answer.status_code == 400, body
        assert answer.json()["code"] == code, body
        assert words in answer.json()["error"], (body, answer.json())
    assert not VideoTask.objects.exists()
    since = requests.get(url, headers=bearer(rw), params={"updated_since": "yesterday"}, timeout=10)
    assert since.status_code == 400
    assert "updated_since" in since.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_live_401_for_unknown_and_revoked_keys(live_server, team, owner):
    key, plaintext = ApiKey.issue(team, "old", read_only=True, created_by=owner)
    url = live(live_server, "api:tasks")
    assert requests.get(url, headers=bearer(plaintext), timeout=10).status_code == 200
    key.revoke()
    for headers in (bearer(plaintext), bearer("vdk_nothing"), {"Authorization": f"Basic {plaintext}"}):
        answer = requests.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json() == {
            "error": "The API key is not valid (unknown or revoked).",
            "code": "invalid_key",
        }
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db(transaction=True)
def test_live_403_for_a_read_only_key_changes_nothing(live_server, team, owner, ro):
    task = make_task(owner, "video_kept", workspace=team)
    posted = requests.post(
        live(live_server, "api:tasks"), headers=bearer(ro), json={"task_id": "v2"}, timeout=10
    )
    deleted = requests.delete(live(live_server, "api:task", "video_kept"), headers=bearer(ro), timeout=10)
    started = requests.post(
        live(live_server, "api:videos"), headers=bearer(ro), json={"prompt": "x", "model": "m"}, timeout=10
    )
    for answer in (posted, deleted, started):
        assert answer.status_code == 403
        assert answer.json()["code"] == "read_only_key"
    assert list(VideoTask.objects.values_list("pk", flat=True)) == [task.pk]
    assert not Submission.objects.exists()
    # Reading is what it is for.
    assert requests.get(live(live_server, "api:task", "video_kept"), headers=bearer(ro), timeout=10).ok


@pytest.mark.django_db(transaction=True)
def test_live_404_for_another_workspace_task_which_the_list_never_shows(
    live_server, team, owner, outsider, rw
):
    elsewhere = Workspace.objects.create(name="Elsewhere", slug="elsewhere")
    join(elsewhere, outsider, "owner")
    make_task(outsider, "video_theirs", workspace=elsewhere)
    make_task(owner, "video_ours", workspace=team)
    for method in ("GET", "DELETE"):
        answer = requests.request(
            method, live(live_server, "api:task", "video_theirs"), headers=bearer(rw), timeout=10
        )
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
    listed = requests.get(live(live_server, "api:tasks"), headers=bearer(rw), timeout=10).json()
    assert [task["task_id"] for task in listed["data"]] == ["video_ours"]
    assert VideoTask.objects.filter(task_id="video_theirs").exists()
    # Tracking the same ID in this workspace is a task of its own, not theirs.
    mine = requests.post(
        live(live_server, "api:tasks"), headers=bearer(rw), json={"task_id": "video_theirs"}, timeout=10
    )
    assert mine.status_code == 201
    assert mine.json()["workspace"] == "team"


@pytest.mark.django_db(transaction=True)
def test_live_429_with_retry_after_per_key(live_server, settings, team, owner, rw):
    settings.API_RATE_LIMIT = 3
    other = issue(team, owner, name="other")
    url = live(live_server, "api:tasks")
    statuses = [requests.get(url, headers=bearer(rw), timeout=10).status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    if statuses[3] == 200:
        # The minute turned over mid-test: the fourth request opened a new window.
        statuses.append(requests.get(url, headers=bearer(rw), timeout=10).status_code)
    limited = requests.get(url, headers=bearer(rw), timeout=10)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Per key: another key of the same workspace is not held back.
    assert requests.get(url, headers=bearer(other), timeout=10).status_code == 200


# --- through Django's test client -------------------------------------------------------


def get(client, url, key, **params):
    return client.get(url, params, headers=bearer(key))


def post(client, url, key, body):
    return client.post(url, json.dumps(body), content_type="application/json", headers=bearer(key))


def test_csrf_does_not_apply_to_bearer_calls(team, rw):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post(strict, reverse("api:tasks"), rw, {"task_id": "video_csrf"}).status_code == 201


def test_a_tracked_task_records_its_key_owner_connection_and_event(team, owner, teammate, provider):
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-gateway-0123456789")
    connection.save()
    key, plaintext = ApiKey.issue(team, "pipeline", read_only=False, created_by=teammate)
    from django.test import Client

    client = Client()
    for number, value in enumerate(("Gateway", connection.pk, str(connection.pk))):
        task_id = f"video_on_{number}"
        answer = post(client, reverse("api:tasks"), plaintext, {"task_id": task_id, "connection": value})
        assert answer.status_code == 201
        assert answer.json()["connection"] == "Gateway"
        task = VideoTask.objects.get(task_id=task_id)
        assert (task.owner, task.added_via, task.api_key, task.connection) == (
            teammate,
            "api",
            key,
            connection,
        )
        assert task.next_poll_at is None  # due at once
        assert "pipeline" in task.events.get().message
    from teams.models import AuditEntry

    entry = AuditEntry.objects.filter(workspace=team, kind=AuditEntry.Kind.TRACKED).first()
    assert entry.actor_name == "API key pipeline"


def test_task_json_has_the_contract_fields_and_only_the_dashboards_download(client, team, owner, rw):
    done = make_task(
        owner,
        "video_done",
        workspace=team,
        status=Status.COMPLETED,
        progress=100,
        url="https://cdn.example.com/v.mp4?sig=SECRET",
        model="veo-3",
        seconds="8",
        size="1280x720",
        metadata={"a": 1},
        completed_at=timezone.now(),
    )
    body = get(client, reverse("api:task", args=["video_done"]), rw).json()
    for field in (
        "status", "raw_status", "progress", "model", "seconds", "size", "error_code", "error_message",
        "metadata", "remote_created_at", "completed_at", "expires_at", "last_polled_at",
    ):  # fmt: skip
        assert field in body, field
    assert body["id"] == done.pk
    assert body["seconds"] == 8.0
    assert body["workspace"] == "team"
    assert body["added_by"] == {"type": "user", "name": "owner"}
    assert body["download_url"] == f"http://testserver{reverse('videos:download', args=[done.pk])}"
    assert "SECRET" not in json.dumps(body)
    make_task(owner, "video_running", workspace=team)
    assert get(client, reverse("api:task", args=["video_running"]), rw).json()["download_url"] is None


def test_pages_walk_every_task_once_while_tasks_are_added(client, team, owner, rw):
    start = timezone.now() - timedelta(hours=1)
    before = {
        make_task(owner, f"video_{n}", workspace=team, created_at=start + timedelta(seconds=n // 2)).task_id
        for n in range(11)
    }
    seen: list[str] = []
    url = reverse("api:tasks") + "?limit=3"
    pages = 0
    while url:
        answer = client.get(url, headers=bearer(rw))
        assert answer.status_code == 200
        body = answer.json()
        assert len(body["data"]) <= 3
        seen += [task["task_id"] for task in body["data"]]
        # A script's teammate keeps adding tasks meanwhile: they sort before the cursor.
        make_task(owner, f"video_new_{pages}", workspace=team)
        pages += 1
        url = body["next"]
        if url:
            assert url.startswith("http://testserver/") and "limit=3" in url
    assert pages == 4
    assert sorted(seen) == sorted(before)
    assert len(seen) == len(set(seen))
    created = {t.task_id: t.created_at for t in VideoTask.objects.all()}
    assert [created[s] for s in seen] == sorted((created[s] for s in seen), reverse=True)


def test_filters_status_connection_and_updated_since_by_changed_at(client, team, owner, rw, provider):
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-gateway-0123456789")
    connection.save()
    old = make_task(owner, "video_old", workspace=team, status=Status.COMPLETED)
    new = make_task(owner, "video_new", workspace=team, connection=connection)
    now = timezone.now()
    VideoTask.objects.filter(pk=old.pk).update(changed_at=now - timedelta(hours=2))
    # Made long ago, changed just now: updated_since is about changes, not age.
    VideoTask.objects.filter(pk=new.pk).update(created_at=now - timedelta(days=3), changed_at=now)

    def ids(**params):
        answer = get(client, reverse("api:tasks"), rw, **params)
        assert answer.status_code == 200, answer.json()
        return [task["task_id"] for task in answer.json()["data"]]

    assert ids(status="completed") == ["video_old"]
    assert ids(connection="Gateway") == ["video_new"]
    assert ids(connection=str(connection.pk)) == ["video_new"]
    since = (now - timedelta(hours=1)).isoformat()
    assert ids(updated_since=since) == ["video_new"]
    # The "+" of an offset left unencoded in a URL arrives as a space: still understood.
    raw = client.get(f"{reverse('api:tasks')}?updated_since={since}", headers=bearer(rw))
    assert [task["task_id"] for task in raw.json()["data"]] == ["video_new"]
    assert ids(updated_since=(now - timedelta(hours=3)).isoformat().replace("+00:00", "Z")) == [
        "video_old",
        "video_new",
    ]
    refused = [
        {"status": "done"},
        {"connection": "nope"},
        {"limit": "101"},
        {"limit": "0"},
        {"cursor": "garbage!"},
        {"sort": "asc"},
        {"updated_since": "2026-01-01T00:00:00"},
    ]
    for params in refused:
        answer = get(client, reverse("api:tasks"), rw, **params)
        assert answer.status_code == 400, params
        assert set(answer.json()) == {"error", "code"}


def test_starting_a_video_answers_201_with_its_task(client, configured, team, owner, rw):
    configured.script("POST /videos", video("video/started+1=", "queued", 0, model="veo-3"))
    answer = post(client, reverse("api:videos"), rw, {"prompt": "Waves", "model": "veo-3", "seconds": 8})
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["state"] == "created"
    assert body["task"]["task_id"] == "video/started+1="
    assert body["task"]["added_by"] == {"type": "api_key", "name": "ci"}
    (sent,) = configured.requests
    assert sent.authorization == f"Bearer {PROVIDER_KEY}"
    assert json.loads(sent.body) == {"prompt": "Waves", "model": "veo-3", "seconds": "8"}
    task = VideoTask.objects.get(task_id="video/started+1=")
    assert (task.workspace, task.owner, task.added_via) == (team, owner, "api")
    # What came of it, later.
    again = get(client, reverse("api:video", args=[body["id"]]), rw)
    assert again.json()["state"] == "created"


def test_a_lost_create_is_202_and_never_sent_twice(client, configured, team, rw):
    configured.script("POST /videos", Reply(reset=True))
    answer = post(client, reverse("api:videos"), rw, {"prompt": "Waves", "model": "veo-3"})
    assert answer.status_code == 202, answer.json()
    assert answer.json()["state"] == "unknown"
    assert answer.json()["task"] is None
    assert len(configured.requests) == 1


def test_a_refused_create_is_502_and_a_bad_one_400(client, configured, team, rw):
    configured.script(
        "POST /videos", Reply(400, {"error": {"message": "prompt refused", "code": "moderation"}})
    )
    answer = post(client, reverse("api:videos"), rw, {"prompt": "Waves", "model": "veo-3"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "provider_refused"
    assert answer.json()["submission"]["state"] == "rejected"
    bad = post(client, reverse("api:videos"), rw, {"prompt": "Waves", "model": "veo-3", "size": "huge"})
    assert bad.status_code == 400
    assert "size" in bad.json()["error"]
    assert len(configured.requests) == 1


def test_last_used_is_written_at_most_once_a_minute(client, team, owner):
    key, plaintext = ApiKey.issue(team, "busy", read_only=True, created_by=owner)
    assert key.last_used_at is None
    get(client, reverse("api:tasks"), plaintext)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    assert first is not None
    get(client, reverse("api:tasks"), plaintext)
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    get(client, reverse("api:tasks"), plaintext)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first


def test_unknown_paths_and_methods_answer_json(client, rw):
    answer = get(client, "/api/v1/nothing/here", rw)
    assert answer.status_code == 404
    assert answer.json()["code"] == "no_such_endpoint"
    put = client.put(reverse("api:tasks"), "{}", content_type="application/json", headers=bearer(rw))
    assert put.status_code == 405
    assert put.json()["code"] == "method_not_allowed"


def test_the_openapi_document_describes_every_route(client):
    document = client.get(reverse("api:openapi")).json()
    assert document["openapi"].startswith("3.1")
    described = set(document["paths"])
    resolver = get_resolver()
    (api,) = [p for p in resolver.url_patterns if getattr(p, "namespace", None) == "api"]
    routes = {
        "/" + str(p.pattern).replace("<path:", "{").replace("<int:", "{").replace(">", "}")
        for p in api.url_patterns
        if isinstance(p, URLPattern) and p.name not in (None, "root")
    }
    assert routes == described
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                assert operation["responses"], (path, method)

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_board_and_task_page_name_the_key_or_connection_that_added_a_task(
    client, team, owner, rw, provider
):
    from django.test import Client

    assert post(Client(), reverse("api:tasks"), rw, {"task_id": "video_by_key"}).status_code == 201
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key("sk-gateway-0123456789")
    connection.save()
    hooked = make_task(owner, "video_by_hook", workspace=team, connection=connection, added_via="hook")
    by_key = VideoTask.objects.get(task_id="video_by_key")
    client.force_login(owner)
    board = client.get(reverse("videos:board", args=["team"])).content.decode()
    assert "API key ci" in board
    assert "webhook of Gateway" in board
    assert "API key ci" in client.get(reverse("videos:task_detail", args=[by_key.pk])).content.decode()
    assert (
        "webhook of Gateway" in client.get(reverse("videos:task_detail", args=[hooked.pk])).content.decode()
    )


def redis_or_skip() -> str:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def test_the_rate_limit_counts_in_redis_when_redis_url_is_set(client, settings, team, owner):
    import uuid

    from django.core.cache import cache

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_or_skip(),
            # Keys of this test only, so runs side by side never share a count.
            "KEY_PREFIX": f"test-api-{uuid.uuid4().hex}",
        }
    }
    settings.API_RATE_LIMIT = 2
    plaintext = issue(team, owner)
    codes = [get(client, reverse("api:tasks"), plaintext).status_code for _ in range(3)]
    if codes[2] == 200:  # the minute turned over mid-test
        codes.append(get(client, reverse("api:tasks"), plaintext).status_code)
    assert codes[-1] == 429
    limited = get(client, reverse("api:tasks"), plaintext)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    # The count is in Redis, not in the database cache.
    key = ApiKey.objects.get()
    minute = int(time.time() // 60)
    assert any(cache.get(f"api-rate:{key.key_hash[:32]}:{window}") for window in (minute - 1, minute))
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_cache")
        assert cursor.fetchone()[0] == 0


def test_a_lost_create_found_later_by_the_worker_is_the_keys_task(client, configured, team, owner, rw):
    from videos.submissions import reconcile

    configured.script("POST /videos", Reply(reset=True))
    answer = post(client, reverse("api:videos"), rw, {"prompt": "Storm", "model": "veo-3"})
    assert answer.status_code == 202
    listed = video(
        "video_found", "in_progress", 20, model="veo-3", prompt="Storm", created_at=int(time.time())
    )
    configured.script("GET /videos", Reply(200, {"object": "list", "data": [listed.json], "has_more": False}))
    with VideoAPIClient.from_settings() as provider_client:
        assert reconcile(provider_client, now=timezone.now() + timedelta(seconds=30)) == 1
    task = VideoTask.objects.get(task_id="video_found")
    assert (task.added_via, task.api_key.name, task.owner) == ("api", "ci", owner)
    later = get(client, reverse("api:video", args=[answer.json()["id"]]), rw).json()
    assert later["state"] == "created"
    assert later["task"]["added_by"] == {"type": "api_key", "name": "ci"}
