"""One worker, many provider connections: every task is polled (reconciled, copied,
downloaded) with its own connection's base URL and key, and one connection's refused key,
rate limit, request ceiling or unreadable key never holds another's tasks.

Real loopback providers (tests/fake_provider.py), each with a key of its own; what each
one received is what the assertions read."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db_connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.fake_provider import PROVIDER_KEY, FakeProvider, Reply, video
from tests.pages import join
from videos import downloads, keep, polling
from videos.client import VideoAPIClient
from videos.models import (
    UNREADABLE_KEY_REASON,
    KeepState,
    ProviderConnection,
    ProviderState,
    Status,
    Submission,
    VideoTask,
    Workspace,
)
from videos.polling import Poller
from videos.safe_fetch import FetchFailed, FetchRefused
from videos.submissions import reconcile
from videos.worker import Worker
from videos.worker_status import WorkerStatus

KEY_A = "sk-team-a-0123456789abcdef"
KEY_B = "sk-team-b-0123456789abcdef"
KEY_C = "sk-team-c-refused-01234567"


@pytest.fixture
def fakes(settings) -> Iterator[dict[str, FakeProvider]]:
    # Workspace connections reach only public addresses unless an operator lists the host:
    # these providers are on loopback.
    settings.VIDEO_FETCH_ALLOW_HOSTS = ["127.0.0.1"]
    started = {name: FakeProvider().start() for name in ("a", "b", "c")}
    yield started
    for fake in started.values():
        fake.stop()


def workspace(slug: str, owner) -> Workspace:
    made = Workspace.objects.create(name=f"Team {slug.upper()}", slug=slug)
    join(made, owner, "owner")
    return made


def connect(space: Workspace, name: str, provider: FakeProvider, key: str, **fields) -> ProviderConnection:
    made = ProviderConnection(workspace=space, name=name, base_url=provider.base_url, **fields)
    made.set_api_key(key)
    made.save()
    return made


def tasks_on(owner, space, conn, provider, prefix: str, count: int, *replies: Reply) -> list[VideoTask]:
    """`count` due tasks on `conn`, each scripted on `provider` (default: processing at 40)."""
    made = []
    for i in range(count):
        task_id = f"{prefix}{i}"
        provider.script(task_id, *(replies or (video(task_id, "in_progress", 40),)))
        made.append(VideoTask.objects.create(owner=owner, workspace=space, connection=conn, task_id=task_id))
    return made


def make_poller(default: FakeProvider, concurrency: int = 4) -> Poller:
    client = VideoAPIClient(default.base_url, PROVIDER_KEY, timeout=5.0, connect_timeout=2.0)
    return Poller(client, interval=5.0, concurrency=concurrency, rng=lambda: 0.5)


def make_due() -> None:
    VideoTask.objects.update(next_poll_at=None)


def state_of(conn: ProviderConnection) -> ProviderState | None:
    return ProviderState.objects.filter(connection=conn).first()


def keys_seen(provider: FakeProvider) -> set[str | None]:
    return {seen.authorization for seen in provider.requests}


@pytest.fixture
def teams(owner, fakes):
    """Two workspaces on two providers, and a third workspace whose provider refuses its key."""
    a, b, c = workspace("a", owner), workspace("b", owner), workspace("c", owner)
    return {
        "a": (a, connect(a, "Gateway A", fakes["a"], KEY_A)),
        "b": (b, connect(b, "Gateway B", fakes["b"], KEY_B)),
        "c": (c, connect(c, "Gateway C", fakes["c"], KEY_C)),
    }


def test_one_worker_polls_each_task_with_its_own_key_and_a_refused_key_holds_only_its_own(
    configured, fakes, teams, owner
):
    (wa, ca), (wb, cb), (wc, cc) = teams["a"], teams["b"], teams["c"]
    on_a = tasks_on(owner, wa, ca, fakes["a"], "a", 6)
    on_b = tasks_on(owner, wb, cb, fakes["b"], "b", 6)
    refused = Reply(401, {"error": {"message": f"bad key {KEY_C}", "code": "invalid_api_key"}})
    on_c = tasks_on(owner, wc, cc, fakes["c"], "c", 6, refused)
    own = tasks_on(owner, wa, None, configured, "d", 2)  # the deployment's own connection
    poller = make_poller(configured)
    try:
        first = poller.run_pass()
        asked_c = len(fakes["c"].requests)
        make_due()
        second = poller.run_pass()
        make_due()
        third = poller.run_pass()
    finally:
        poller.close()

    # Each provider saw only its own tasks, each asked with its own connection's key only.
    assert keys_seen(fakes["a"]) == {f"Bearer {KEY_A}"}
    assert keys_seen(fakes["b"]) == {f"Bearer {KEY_B}"}
    assert keys_seen(fakes["c"]) == {f"Bearer {KEY_C}"}
    assert keys_seen(configured) == {f"Bearer {PROVIDER_KEY}"}
    assert {seen.task_id for seen in fakes["a"].requests} == {t.task_id for t in on_a}
    assert {seen.task_id for seen in fakes["b"].requests} == {t.task_id for t in on_b}
    assert {seen.task_id for seen in configured.requests} == {t.task_id for t in own}
    # A and B (and the deployment's own) polled in full on every pass, C's block or not.
    assert len(fakes["a"].requests) == len(fakes["b"].requests) == 3 * 6
    assert len(configured.requests) == 3 * 2
    for report in (first, second, third):
        assert report.polled >= 6 + 6 + 2
        assert report.connections == {f"Gateway C (#{cc.pk})": "blocked"}
        assert report.provider == ""
    assert VideoTask.objects.filter(pk__in=[t.pk for t in on_a + on_b + own], progress=40).count() == 14

    # C: refused once (what was in flight when the 401 came back), then never asked again.
    assert 1 <= asked_c <= 4
    assert len(fakes["c"].requests) == asked_c
    state = state_of(cc)
    assert state.blocked_reason.startswith("The provider refused the API key")
    assert KEY_C not in state.blocked_reason
    assert state.blocked_key_fingerprint == cc.key_fingerprint()
    assert not VideoTask.objects.filter(pk__in=[t.pk for t in on_c], status=Status.FAILED).exists()
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()
    # Nobody else's state was touched.
    assert state_of(ca) is None and state_of(cb) is None
    default = ProviderState.objects.filter(connection__isnull=True).first()
    assert default is None or not (default.blocked_reason or default.paused_until)


def test_a_new_key_lifts_a_connections_block(configured, fakes, teams, owner, monkeypatch):
    monkeypatch.setattr(polling, "CONNECTIONS_TTL", 0.0)
    wc, cc = teams["c"]
    (task,) = tasks_on(owner, wc, cc, fakes["c"], "c", 1, Reply(401, {}), video("c0", "in_progress", 70))
    poller = make_poller(configured)
    try:
        poller.run_pass()
        make_due()
        assert poller.run_pass().connections == {f"Gateway C (#{cc.pk})": "blocked"}
        assert len(fakes["c"].requests) == 1
        cc.set_api_key(KEY_C + "-new")
        cc.save()
        make_due()
        assert poller.run_pass().connections == {}
    finally:
        poller.close()
    assert [seen.authorization for seen in fakes["c"].requests] == [f"Bearer {KEY_C}", f"Bearer {KEY_C}-new"]
    task.refresh_from_db()
    assert task.progress == 70


def test_a_rate_limit_pauses_only_its_own_connection(configured, fakes, teams, owner):
    (wa, ca), (wb, cb) = teams["a"], teams["b"]
    limited = Reply(429, {}, headers={"Retry-After": "60"}, delay=0.05)
    on_a = tasks_on(owner, wa, ca, fakes["a"], "a", 8, limited)
    on_b = tasks_on(owner, wb, cb, fakes["b"], "b", 8, video("b", "in_progress", 40, model="m"))
    poller = make_poller(configured, concurrency=4)
    try:
        first = poller.run_pass()
        asked_a = len(fakes["a"].requests)
        make_due()
        second = poller.run_pass()
    finally:
        poller.close()
    label = f"Gateway A (#{ca.pk})"
    assert first.connections == {label: "paused"} and second.connections == {label: "paused"}
    # A: what was in flight when the first 429 came back, then nothing more.
    assert 1 <= asked_a <= 4
    assert len(fakes["a"].requests) == asked_a
    paused = state_of(ca).paused_until
    assert timezone.now() + timedelta(seconds=50) < paused <= timezone.now() + timedelta(seconds=60)
    for task in on_a:
        task.refresh_from_db()
        # Asked and held back until the pause ends, or never claimed (still due, left out).
        assert task.lease_token is None
        assert task.next_poll_at is None or task.next_poll_at >= paused - timedelta(seconds=1)
    # B: every task polled in both passes, the first one included.
    assert len(fakes["b"].requests) == 16
    assert VideoTask.objects.filter(pk__in=[t.pk for t in on_b], progress=40, poll_count=2).count() == 8
    assert state_of(cb) is None
    assert not ProviderState.objects.filter(connection__isnull=True, paused_until__isnull=False).exists()


def test_after_a_connections_pause_its_probe_goes_alone_and_the_others_go_on(configured, fakes, teams, owner):
    (wa, ca), (wb, cb) = teams["a"], teams["b"]
    tasks_on(owner, wa, ca, fakes["a"], "a", 5, Reply(200, {"status": "in_progress"}, delay=0.3))
    tasks_on(owner, wb, cb, fakes["b"], "b", 5)
    ProviderState.objects.create(connection=ca, base_url=ca.base_url, paused_until=timezone.now())
    poller = make_poller(configured)
    try:
        report = poller.run_pass()
        assert len(fakes["a"].requests) == 1  # the probe
        assert report.connections == {f"Gateway A (#{ca.pk})": "probing"}
        assert len(fakes["b"].requests) == 5  # B's tasks went on meanwhile
        # The next pass learns the probe was answered: the pause is over, A's others go.
        assert poller.run_pass().connections == {}
    finally:
        poller.close()
    assert state_of(ca).paused_until is None
    probe, *rest = fakes["a"].requests
    assert len(rest) == 4
    assert all(seen.at >= probe.at + 0.3 for seen in rest)


def test_a_request_ceiling_slows_only_its_own_connection(configured, fakes, owner):
    a, b = workspace("a", owner), workspace("b", owner)
    ca = connect(a, "Slow", fakes["a"], KEY_A, max_rps=5)
    cb = connect(b, "Fast", fakes["b"], KEY_B)
    tasks_on(owner, a, ca, fakes["a"], "a", 6)
    tasks_on(owner, b, cb, fakes["b"], "b", 12)
    poller = make_poller(configured, concurrency=8)
    try:
        assert poller.run_pass().polled == 18
    finally:
        poller.close()
    slow = sorted(seen.at for seen in fakes["a"].requests)
    fast = sorted(seen.at for seen in fakes["b"].requests)
    # Sent at 5 a second: six take at least a second. (The gaps between arrivals alone
    # jitter on a loaded machine: one request held up on its way closes the next gap.)
    assert slow[-1] - slow[0] >= 5 / 5 - 0.05
    # ...while the other connection's twelve went out meanwhile, unthrottled.
    assert fast[-1] - fast[0] < slow[-1] - slow[0]
    assert fast[-1] < slow[-1]


def test_a_key_that_can_no_longer_be_decrypted_blocks_its_connection_only(
    configured, fakes, teams, owner, settings, caplog, monkeypatch
):
    monkeypatch.setattr(polling, "CONNECTIONS_TTL", 0.0)
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.VIDEO_ENCRYPTION_KEYS = [first]
    (wa, ca), (wc, _) = teams["a"], teams["c"]
    lost = connect(wc, "Lost key", fakes["c"], KEY_C)
    (waiting,) = tasks_on(owner, wc, lost, fakes["c"], "c", 1)
    tasks_on(owner, wa, ca, fakes["a"], "a", 3)
    settings.VIDEO_ENCRYPTION_KEYS = [second]  # the first key dropped without a reencrypt
    poller = make_poller(configured)
    try:
        with caplog.at_level(logging.ERROR, logger="videos.poller"):
            report = poller.run_pass()
        make_due()
        again = poller.run_pass()
        assert fakes["c"].requests == []  # nothing sent, with no key or a wrong one
        assert len(fakes["a"].requests) == 6  # the readable connection polled on both passes
        label = f"Lost key (#{lost.pk})"
        assert report.connections[label] == "blocked" and again.connections[label] == "blocked"
        state = state_of(lost)
        assert state.blocked_reason == UNREADABLE_KEY_REASON
        assert state.blocked_key_fingerprint == lost.key_fingerprint()
        waiting.refresh_from_db()
        assert waiting.lease_token is None and waiting.poll_count == 0
        (line,) = [r.getMessage() for r in caplog.records if "can no longer be decrypted" in r.getMessage()]
        assert f"connection #{lost.pk} 'Lost key'" in line
        assert KEY_C not in caplog.text and first not in caplog.text and second not in caplog.text
        # A manager enters the key again (under the current encryption key): polling resumes.
        lost.refresh_from_db()
        lost.set_api_key(KEY_C)
        lost.save()
        make_due()
        assert label not in poller.run_pass().connections
    finally:
        poller.close()
    assert keys_seen(fakes["c"]) == {f"Bearer {KEY_C}"}
    waiting.refresh_from_db()
    assert waiting.progress == 40


def test_claims_leave_out_only_the_connections_named(owner, fakes, teams):
    (wa, ca), (wb, cb) = teams["a"], teams["b"]
    on_a = tasks_on(owner, wa, ca, fakes["a"], "a", 2)
    on_b = tasks_on(owner, wb, cb, fakes["b"], "b", 2)
    own = tasks_on(owner, wa, None, fakes["a"], "d", 2)
    lease = timedelta(seconds=60)

    def claimed(**only_or_exclude) -> set[int]:
        tasks = VideoTask.objects.claim_due(10, lease, **only_or_exclude)
        VideoTask.objects.update(lease_token=None, next_poll_at=None)
        return {task.pk for task in tasks}

    def pks(tasks: list[VideoTask]) -> set[int]:
        return {task.pk for task in tasks}

    assert claimed(exclude_connections={ca.pk}) == pks(on_b + own)  # the null rows kept
    assert claimed(exclude_connections={None}) == pks(on_a + on_b)
    assert claimed(exclude_connections={None, cb.pk}) == pks(on_a)
    assert claimed(only_connections={cb.pk}) == pks(on_b)
    assert claimed(only_connections={None}) == pks(own)
    assert claimed() == pks(on_a + on_b + own)


# Reconciling lost creates


def lost_create(owner, space, conn, prompt: str) -> Submission:
    return Submission.objects.create(
        owner=owner,
        workspace=space,
        connection=conn,
        prompt=prompt,
        model="veo-3",
        state=Submission.State.UNKNOWN,
        next_reconcile_at=timezone.now(),
    )


def listing(provider: FakeProvider, task_id: str, prompt: str) -> None:
    entry = video(task_id, "queued", 0, model="veo-3", prompt=prompt, created_at=int(time.time())).json
    provider.script("GET /videos", Reply(200, {"object": "list", "data": [entry], "has_more": False}))


def test_lost_creates_are_looked_for_on_their_own_connection(configured, fakes, teams, owner):
    (wa, ca), (wb, cb) = teams["a"], teams["b"]
    on_a = lost_create(owner, wa, ca, "Harbour at dusk")
    on_b = lost_create(owner, wb, cb, "Forest in rain")
    listing(fakes["a"], "video_same_id", "Harbour at dusk")
    listing(fakes["b"], "video_same_id", "Forest in rain")
    # The same ID tracked in another workspace, on another provider, is not this one.
    VideoTask.objects.create(owner=owner, workspace=workspace("z", owner), task_id="video_same_id")
    # As the worker runs it: with its poller's client for each connection.
    worker = Worker(make_poller(configured), keep_copies=False)
    try:
        assert worker.reconcile() is True
        assert worker.counts["reconciled"] == 2
    finally:
        worker.poller.close()
    assert [seen.authorization for seen in fakes["a"].requests] == [f"Bearer {KEY_A}"]
    assert [seen.authorization for seen in fakes["b"].requests] == [f"Bearer {KEY_B}"]
    assert configured.requests == []
    for submission, space, conn in ((on_a, wa, ca), (on_b, wb, cb)):
        submission.refresh_from_db()
        assert submission.state == Submission.State.CREATED
        assert (submission.task.workspace, submission.task.connection) == (space, conn)
        assert submission.task.task_id == "video_same_id"


def test_reconcile_without_a_poller_builds_and_closes_its_own_client(configured, fakes, teams, owner):
    wa, ca = teams["a"]
    lost = lost_create(owner, wa, ca, "Harbour at dusk")
    listing(fakes["a"], "video_found", "Harbour at dusk")
    with VideoAPIClient(configured.base_url, PROVIDER_KEY) as client:
        assert reconcile(client, now=timezone.now() + timedelta(seconds=30)) == 1
    assert keys_seen(fakes["a"]) == {f"Bearer {KEY_A}"}
    lost.refresh_from_db()
    assert lost.task.connection == ca


# Downloads and kept copies


def content(provider: FakeProvider, task_id: str, body: bytes) -> None:
    reply = Reply(200, body=body, headers={"Content-Type": "video/mp4"})
    provider.script(f"GET /videos/{task_id}/content", reply)


def test_a_download_sends_the_connections_key_only_under_its_base_url(configured, fakes, teams, owner):
    wa, ca = teams["a"]
    plain = VideoTask.objects.create(
        owner=owner, workspace=wa, connection=ca, task_id="video/a+1=", status=Status.COMPLETED, progress=100
    )
    content(fakes["a"], "video/a+1=", b"from-a")
    with downloads.open_remote(plain) as remote:
        assert b"".join(remote.iter_bytes()) == b"from-a"
    # A direct link on A's own host, outside its base URL's path: fetched without the key.
    fakes["a"].script("GET /files/a.mp4", Reply(200, body=b"off-prefix"))
    linked = VideoTask.objects.create(
        owner=owner,
        workspace=wa,
        connection=ca,
        task_id="video_a_linked",
        status=Status.COMPLETED,
        progress=100,
        url=fakes["a"].base_url.removesuffix("/v1") + "/files/a.mp4",
    )
    with downloads.open_remote(linked) as remote:
        assert b"".join(remote.iter_bytes()) == b"off-prefix"
    # A link to another connection's private origin (B's): refused, nothing sent there.
    linked.url = fakes["b"].base_url + "/videos/video_a_linked/content"
    with pytest.raises(FetchRefused):
        downloads.open_remote(linked)
    assert fakes["b"].requests == []
    assert [seen.authorization for seen in fakes["a"].requests] == [f"Bearer {KEY_A}", None]
    assert configured.requests == []


def test_the_download_view_fetches_on_the_tasks_connection(configured, fakes, teams, owner, signed_in):
    wb, cb = teams["b"]
    task = VideoTask.objects.create(
        owner=owner, workspace=wb, connection=cb, task_id="video_b", status=Status.COMPLETED, progress=100
    )
    content(fakes["b"], "video_b", b"from-b")
    response = signed_in.get(f"/tasks/{task.pk}/download/")
    assert b"".join(response.streaming_content) == b"from-b"
    assert keys_seen(fakes["b"]) == {f"Bearer {KEY_B}"}
    assert configured.requests == [] and fakes["a"].requests == []


def test_a_download_on_an_unreadable_key_fails_plainly(fakes, teams, owner, settings):
    settings.VIDEO_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    wa, _ = teams["a"]
    lost = connect(wa, "Lost", fakes["a"], KEY_A)
    task = VideoTask.objects.create(
        owner=owner, workspace=wa, connection=lost, task_id="v", status=Status.COMPLETED, progress=100
    )
    settings.VIDEO_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    task = VideoTask.objects.select_related("connection").get(pk=task.pk)
    with pytest.raises(FetchFailed) as failed:
        downloads.open_remote(task)
    assert failed.value.reason == UNREADABLE_KEY_REASON and failed.value.transient
    assert fakes["a"].requests == []


def test_a_kept_copy_is_fetched_on_the_tasks_connection(configured, fakes, teams, owner):
    wa, ca = teams["a"]
    task = VideoTask.objects.create(
        owner=owner,
        workspace=wa,
        connection=ca,
        task_id="video_keep_a",
        status=Status.COMPLETED,
        progress=100,
        keep_state=KeepState.WAITING,
        next_keep_at=timezone.now(),
    )
    fakes["a"].script(
        "GET /videos/video_keep_a/content",
        Reply(200, body=b"kept-bytes", headers={"Content-Type": "video/mp4"}),
        Reply(404, {}),
    )
    assert keep.run() == 1
    task.refresh_from_db()
    assert task.keep_state == KeepState.KEPT
    with task.kept_file.open("rb") as stored:
        assert stored.read() == b"kept-bytes"
    assert keys_seen(fakes["a"]) == {f"Bearer {KEY_A}"}
    assert configured.requests == []


# What a board says


def test_the_banner_names_the_workspaces_held_back_connections(fakes, teams, owner):
    (wa, ca), (_, cb) = teams["a"], teams["b"]
    refused = ProviderState.for_connection(ca, ca.base_url)
    refused.block("The provider refused the API key (HTTP 401).", ca.key_fingerprint())
    second = connect(wa, "Gateway A2", fakes["b"], KEY_B)
    ProviderState.for_connection(second, second.base_url).pause_until(timezone.now() + timedelta(minutes=5))
    other = ProviderState.for_connection(cb, cb.base_url)
    other.block("The provider refused the API key.", cb.key_fingerprint())

    status = WorkerStatus.current(wa)
    assert [(c.name, bool(c.blocked), bool(c.paused_until)) for c in status.connections] == [
        ("Gateway A", True, False),
        ("Gateway A2", False, True),
    ]
    assert WorkerStatus.current().connections == ()  # no workspace: the deployment's own only
    # The fragment as a board renders it for workspace A.
    html = render_to_string("videos/_worker_status.html", {"worker": status})
    assert "Polling is stopped on Gateway A:" in html and "refused the API key" in html
    assert 'href="/w/a/connections/"' in html
    assert "Polling paused on Gateway A2" in html
    assert "Gateway B" not in html
    for key in (KEY_A, KEY_B):
        assert key not in html


def test_the_banner_costs_the_same_whatever_the_number_of_connections(fakes, teams, owner):
    wa, ca = teams["a"]

    def queries() -> int:
        with CaptureQueriesContext(db_connection) as captured:
            WorkerStatus.current(wa)
        return len(captured)

    ProviderState.for_connection(ca, ca.base_url).block("refused", ca.key_fingerprint())
    one = queries()
    for i in range(5):
        extra = connect(wa, f"More {i}", fakes["b"], KEY_B)
        ProviderState.for_connection(extra, extra.base_url).block("refused", extra.key_fingerprint())
    assert queries() == one
    assert len(WorkerStatus.current(wa).connections) == 6


def test_the_deployments_banner_reads_only_its_own_row(settings, fakes, teams):
    # A workspace connection on the deployment's own base URL, blocked: not the deployment's.
    _, ca = teams["a"]
    settings.VIDEO_API_BASE_URL = ca.base_url
    ProviderState.for_connection(ca, ca.base_url).block("refused", ca.key_fingerprint())
    ProviderState.for_connection(None, ca.base_url)
    status = WorkerStatus.current()
    assert status.provider_blocked == "" and status.provider_paused_until is None


def test_a_new_key_clears_the_banner(fakes, teams):
    wa, ca = teams["a"]
    ProviderState.for_connection(ca, ca.base_url).block("refused", ca.key_fingerprint())
    assert WorkerStatus.current(wa).connections
    ca.set_api_key(KEY_A + "-replaced")
    ca.save()
    assert WorkerStatus.current(wa).connections == ()


def test_healthz_lists_held_back_connections_by_id_and_name_never_a_key(client, settings, fakes, teams):
    settings.HEALTHZ_TOKEN = "health-token-0123456789"
    _, ca = teams["a"]
    ProviderState.for_connection(ca, ca.base_url).block(f"refused {KEY_A}", ca.key_fingerprint())
    response = client.get("/healthz", HTTP_AUTHORIZATION="Bearer health-token-0123456789")
    (held,) = response.json()["worker"]["connections_held_back"]
    assert (held["id"], held["name"], held["workspace"]) == (ca.pk, "Gateway A", "a")
    assert held["state"] == "blocked"
    assert KEY_A not in response.content.decode()


def test_a_boards_banner_speaks_of_its_own_workspaces_connections(fakes, teams, signed_in):
    (_, ca), (_, cb) = teams["a"], teams["b"]
    ProviderState.for_connection(ca, ca.base_url).block(
        "The provider refused the API key.", ca.key_fingerprint()
    )
    html = signed_in.get("/w/a/status/").content.decode()
    assert "Polling is stopped on Gateway A:" in html and 'href="/w/a/connections/"' in html
    # The fragment refreshes itself for the same workspace.
    assert 'hx-get="/w/a/status/"' in html
    assert "Gateway A" not in signed_in.get("/w/b/status/").content.decode()
    ProviderState.for_connection(cb, cb.base_url).pause_until(timezone.now() + timedelta(minutes=2))
    assert "Polling paused on Gateway B" in signed_in.get("/w/b/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_every_connections_tasks_each_polled_once(
    configured, fakes, teams, owner, tmp_path
):
    from tests.test_workers import start_worker, stop, wait_until

    if db_connection.vendor != "postgresql":
        pytest.skip("several workers share tasks through PostgreSQL row locks; SQLite allows one")
    (wa, ca), (wb, cb), (wc, cc) = teams["a"], teams["b"], teams["c"]
    done = {"a": [], "b": [], "d": []}
    for prefix, space, conn, provider in (("a", wa, ca, fakes["a"]), ("b", wb, cb, fakes["b"])):
        for i in range(300):
            provider.script(f"{prefix}{i}", video(f"{prefix}{i}", "completed", 100))
            done[prefix].append(
                VideoTask(owner=owner, workspace=space, connection=conn, task_id=f"{prefix}{i}")
            )
    for i in range(300):
        configured.script(f"d{i}", video(f"d{i}", "completed", 100))
        done["d"].append(VideoTask(owner=owner, workspace=wa, task_id=f"d{i}"))
    VideoTask.objects.bulk_create([task for tasks in done.values() for task in tasks])
    refused = tasks_on(owner, wc, cc, fakes["c"], "c", 20, Reply(401, {}, delay=0.05))
    env = {"VIDEO_POLL_CONCURRENCY": "8", "VIDEO_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    workers = [start_worker(configured, tmp_path, **env) for _ in range(2)]
    try:
        wait_until(
            lambda: VideoTask.objects.filter(status=Status.COMPLETED).count() == 900,
            90,
            "the workers did not finish every connection's tasks",
        )
    finally:
        stop(*workers)
    assert all(worker.returncode == 0 for worker in workers), [w.log.read_text()[-2000:] for w in workers]

    def polled(provider: FakeProvider) -> list[str]:
        # Status requests only (the keeper may also be fetching the finished videos).
        return sorted(seen.task_id for seen in provider.requests if " " not in seen.task_id)

    # Each task polled exactly once, with its own connection's key (the deployment's from the
    # worker's environment), whichever worker took it; copies fetched with the same keys.
    assert keys_seen(configured) == {"Bearer sk-command-test"}
    assert polled(configured) == sorted(t.task_id for t in done["d"])
    for name, key in (("a", KEY_A), ("b", KEY_B)):
        assert keys_seen(fakes[name]) == {f"Bearer {key}"}
        assert polled(fakes[name]) == sorted(t.task_id for t in done[name])
    # The refused connection: what the two workers had in flight, then nothing; its tasks wait.
    assert 1 <= len(fakes["c"].requests) <= 2 * 8
    assert state_of(cc).is_blocked_for(cc.key_fingerprint())
    assert (
        not VideoTask.objects.filter(pk__in=[t.pk for t in refused]).exclude(status=Status.PENDING).exists()
    )
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()


def test_tasks_of_a_new_connection_with_an_unreadable_key_do_not_end_the_pass(
    configured, fakes, teams, owner, settings
):
    settings.VIDEO_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    (wa, ca), (wc, _) = teams["a"], teams["c"]
    poller = make_poller(configured, concurrency=2)  # claims 4 at a time
    try:
        poller.run_pass()  # the worker has read the connections: the next one is new to it
        lost = connect(wc, "Lost key", fakes["c"], KEY_C)
        earlier = timezone.now() - timedelta(minutes=1)
        for task in tasks_on(owner, wc, lost, fakes["c"], "c", 8):  # first in line
            VideoTask.objects.filter(pk=task.pk).update(next_poll_at=earlier)
        for task in tasks_on(owner, wa, ca, fakes["a"], "a", 3):  # due, but after those
            VideoTask.objects.filter(pk=task.pk).update(next_poll_at=earlier + timedelta(seconds=1))
        settings.VIDEO_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
        report = poller.run_pass()
    finally:
        poller.close()
    assert report.polled == 3 and len(fakes["a"].requests) == 3
    assert fakes["c"].requests == []
    assert state_of(lost).blocked_reason == UNREADABLE_KEY_REASON
    assert not VideoTask.objects.filter(lease_token__isnull=False).exists()
