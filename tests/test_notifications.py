"""Notification channels: delivery by the worker over real HTTP on loopback, signatures,
retries and backoff, disabling, scope, the SSRF rule, and the channel pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from notifications import delivery
from notifications.events import check_workers, enqueue_task_events
from notifications.models import Attempt, Delivery, Event, EventKind
from tests.fake_provider import LoopbackServer, video
from tests.pages import join, make_task
from videos.client import VideoAPIClient
from videos.models import NotificationChannel, Status, VideoTask, WorkerHeartbeat
from videos.polling import Poller

TOKEN = "T0KEN-in-the-url-9f8e7d"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class Receiver(LoopbackServer):
    """Answers each POST with the next scripted status (then `default`), keeping what came."""

    def __init__(self, *statuses: int, default: int = 204) -> None:
        super().__init__()
        self.statuses = list(statuses)
        self.default = default
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(
                Received(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
            )
            status = self.statuses.pop(0) if self.statuses else self.default
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


@pytest.fixture
def receiver(settings):
    server = Receiver().start()
    # As an operator allows a self-hosted receiver on a private network.
    settings.VIDEO_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{server.server.server_address[1]}"]
    yield server
    server.stop()


@pytest.fixture
def site(settings):
    settings.SITE_URL = "https://videos.example.com"


def channel(workspace, kind, target, **fields) -> NotificationChannel:
    made = NotificationChannel(workspace=workspace, kind=kind, target=target, **fields)
    made.save()
    return made


def finish(task: VideoTask, status: str = Status.COMPLETED, **fields) -> None:
    """What the poller's commit hook does for a task that just finished."""
    VideoTask.objects.filter(pk=task.pk).update(status=status, **fields)
    task.refresh_from_db()
    enqueue_task_events([task])


def verify(secret: str, received: Received) -> bool:
    """A receiver's check, written from the Standard Webhooks spec, not from our code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, timestamp = received.headers["webhook-id"], received.headers["webhook-timestamp"]
    signed = f"{msg_id}.{timestamp}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in received.headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


def test_a_finished_video_reaches_a_webhook_signed_per_standard_webhooks(
    receiver, team, owner, site, provider, django_capture_on_commit_callbacks
):
    hook = channel(team, "webhook", receiver.url)
    assert hook.signing_secret.startswith("whsec_")
    assert len(base64.b64decode(hook.signing_secret[6:])) == 32
    # Through the real poller: its commit hook queues the event, nothing is sent yet.
    task = make_task(owner, "vid_sig", workspace=team, label="Cat on a skateboard")
    provider.script("vid_sig", video("vid_sig", "completed", 100))
    client = VideoAPIClient(provider.base_url, "sk-test", timeout=2.0, connect_timeout=1.0)
    poller = Poller(client, interval=5.0, concurrency=1, rng=lambda: 0.5)
    with django_capture_on_commit_callbacks(execute=True):
        poller.run_pass()
    poller.close()
    assert receiver.received == []
    before = int(timezone.now().timestamp())

    assert delivery.run() is True
    (got,) = receiver.received
    assert got.path == f"/hooks/{TOKEN}"
    assert got.headers["content-type"] == "application/json"
    assert verify(hook.signing_secret, got)
    assert abs(int(got.headers["webhook-timestamp"]) - before) <= 2
    event = Event.objects.get(task=task)
    assert got.headers["webhook-id"] == event.event_id
    body = got.json
    assert body["type"] == "task.completed"
    assert body["data"]["task"]["task_id"] == "vid_sig"
    assert body["data"]["text"] == (
        f"Video finished: Cat on a skateboard in Team — https://videos.example.com/tasks/{task.pk}/"
    )
    # A tampered body fails the same check: the test's verifier is not a rubber stamp.
    assert not verify(hook.signing_secret, Received(got.path, got.headers, got.body + b" "))
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), got)
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    assert delivery.run() is False  # nothing sent twice


def test_a_failed_delivery_is_retried_with_the_same_webhook_id_and_both_are_logged(
    receiver, team, owner, signed_in
):
    receiver.statuses = [500]
    hook = channel(team, "webhook", receiver.url)
    finish(
        make_task(owner, "vid_retry", workspace=team), Status.FAILED, error_message="Blocked by moderation"
    )
    start = timezone.now()
    delivery.run(start)
    pending = Delivery.objects.get()
    assert pending.status == Delivery.Status.PENDING and pending.attempts == 1
    wait = (pending.next_attempt_at - start).total_seconds()
    assert 27 <= wait <= 33  # 30 s, with jitter
    assert delivery.run(start + timedelta(seconds=10)) is False  # not due yet

    delivery.run(pending.next_attempt_at)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verify(hook.signing_secret, second)
    assert first.json["data"]["text"].startswith("Video failed: vid_retry in Team (Blocked by moderation)")
    assert Delivery.objects.get().status == Delivery.Status.DELIVERED
    page = signed_in.get(reverse("notifications:channel", args=[team.slug, hook.pk])).content.decode()
    assert page.count('<td data-label="Event">task.failed') == 2
    assert "500" in page and "HTTP 500" in page and "Delivered" in page


def test_a_channel_failing_for_a_day_backs_off_and_is_disabled_with_the_reason(
    receiver, team, owner, signed_in
):
    receiver.default = 404  # a misconfigured receiver: retried too, the error kept
    hook = channel(team, "slack", receiver.url)
    finish(make_task(owner, "vid_down", workspace=team))
    now = timezone.now()
    waits = []
    while True:
        delivery.run(now)
        hook.refresh_from_db()
        if not hook.enabled:
            break
        pending = Delivery.objects.get()
        waits.append((pending.next_attempt_at - now).total_seconds())
        now = pending.next_attempt_at
        assert len(waits) < 60
    assert waits[:4] == pytest.approx([30, 60, 120, 240], rel=0.11)
    assert max(waits) <= 3600 * 1.1
    assert all(b >= a * 0.8 for a, b in itertools.pairwise(waits))
    assert now - hook.failing_since >= timedelta(days=1)
    assert "HTTP 404" in hook.disabled_reason
    assert len(receiver.received) == len(waits) + 1
    # Disabled: nothing more is sent, however late it gets.
    Delivery.objects.update(status=Delivery.Status.PENDING, next_attempt_at=now)
    assert delivery.run(now + timedelta(hours=2)) is False

    page = signed_in.get(reverse("notifications:channel", args=[team.slug, hook.pk])).content.decode()
    assert "Disabled" in page and "failing for a day" in page
    response = signed_in.post(reverse("notifications:channel_enable", args=[team.slug, hook.pk]))
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.enabled and hook.failing_since is None and hook.disabled_reason == ""


def test_slack_discord_and_teams_receive_their_payload_shapes(receiver, team, owner, site):
    slack = channel(team, "slack", receiver.url + "/slack")
    discord = channel(team, "discord", receiver.url + "/discord")
    teams = channel(team, "teams", receiver.url + "/teams")
    task = make_task(owner, "vid_shapes", workspace=team)
    finish(task)
    delivery.run()
    by_path = {got.path.rsplit("/", 1)[1]: got for got in receiver.received}
    text = f"Video finished: vid_shapes in Team — https://videos.example.com/tasks/{task.pk}/"
    assert by_path["slack"].json == {"text": text}
    assert by_path["discord"].json["content"] == text
    assert by_path["discord"].json["allowed_mentions"] == {"parse": []}
    card_message = by_path["teams"].json
    assert card_message["type"] == "message"
    (attachment,) = card_message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == text
    assert card["actions"][0]["url"] == f"https://videos.example.com/tasks/{task.pk}/"
    # None of them is signed: only the webhook kind has a secret.
    assert all("webhook-signature" not in got.headers for got in receiver.received)
    assert {slack.signing_secret, discord.signing_secret, teams.signing_secret} == {""}


def test_without_site_url_messages_carry_no_link(receiver, team, owner, settings):
    settings.SITE_URL = ""
    channel(team, "slack", receiver.url)
    finish(make_task(owner, "vid_nolink", workspace=team, label="Nolink"))
    delivery.run()
    assert receiver.received[0].json == {"text": "Video finished: Nolink in Team"}


def test_email_goes_through_djangos_mail(team, owner):
    channel(team, "email", "ops@example.com, lead@example.com", events=["task.failed"])
    finish(make_task(owner, "vid_ok", workspace=team))  # not subscribed
    finish(make_task(owner, "vid_bad", workspace=team), Status.FAILED, error_code="moderation")
    delivery.run()
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == "Video failed: vid_bad in Team (moderation)"
    assert Attempt.objects.get().ok


def test_a_private_address_is_refused_at_send_time_without_the_allow_list(receiver, team, owner, settings):
    hook = channel(team, "webhook", receiver.url)
    settings.VIDEO_FETCH_ALLOW_HOSTS = []  # allowed when saved, no longer when sent
    finish(make_task(owner, "vid_ssrf", workspace=team))
    delivery.run()
    assert receiver.received == []
    attempt = Attempt.objects.get(channel=hook)
    assert not attempt.ok and attempt.status_code is None
    assert "loopback" in attempt.error
    assert TOKEN not in attempt.error


def test_the_form_refuses_a_private_address_without_the_allow_list(signed_in, team, settings):
    settings.VIDEO_FETCH_ALLOW_HOSTS = []
    response = signed_in.post(
        reverse("notifications:channels", args=[team.slug]),
        {"kind": "webhook", "target": f"http://127.0.0.1:9/{TOKEN}", "events": ["task.completed"]},
    )
    assert response.status_code == 400
    assert "loopback" in response.content.decode()
    assert not NotificationChannel.objects.exists()


def test_an_only_my_tasks_channel_ignores_a_teammates_task(receiver, team, owner, teammate):
    join(team, owner, "owner")
    channel(team, "slack", receiver.url, only_mine=True, created_by=owner)
    finish(make_task(teammate, "vid_theirs", workspace=team))
    delivery.run()
    assert receiver.received == []
    finish(make_task(owner, "vid_mine", workspace=team))
    delivery.run()
    (got,) = receiver.received
    assert "vid_mine" in got.json["text"]


def test_another_workspaces_task_is_not_announced(receiver, team, owner):
    channel(team, "slack", receiver.url)
    finish(make_task(owner, "vid_personal"))  # the owner's personal workspace
    delivery.run()
    assert receiver.received == []


def test_the_test_button_only_queues_and_the_worker_sends(receiver, signed_in, team):
    hook = channel(team, "webhook", receiver.url)
    response = signed_in.post(reverse("notifications:channel_test", args=[team.slug, hook.pk]))
    assert response.status_code == 302
    assert receiver.received == []  # never inside the request
    assert Event.objects.get().kind == EventKind.TEST
    delivery.run()
    (got,) = receiver.received
    assert got.json["type"] == "test"
    assert verify(hook.signing_secret, got)


def test_secrets_show_once_and_never_again(receiver, signed_in, team, caplog):
    url = reverse("notifications:channels", args=[team.slug])
    response = signed_in.post(
        url, {"kind": "webhook", "name": "CI", "target": receiver.url, "events": ["task.completed"]}
    )
    assert response.status_code == 200
    hook = NotificationChannel.objects.get()
    assert hook.signing_secret in response.content.decode()  # shown once
    assert TOKEN not in response.content.decode()
    assert hook.target == receiver.url
    assert TOKEN not in hook.target_encrypted and TOKEN not in repr(hook) and TOKEN not in str(hook)
    assert hook.signing_secret not in hook.secret_encrypted

    receiver.default = 500
    signed_in.post(reverse("notifications:channel_test", args=[team.slug, hook.pk]))
    with caplog.at_level("DEBUG"):
        delivery.run()
    pages = [
        signed_in.get(url).content.decode(),
        signed_in.get(reverse("notifications:channel", args=[team.slug, hook.pk])).content.decode(),
    ]
    for text in [*pages, caplog.text, *Attempt.objects.values_list("error", flat=True)]:
        assert TOKEN not in text
        assert hook.signing_secret not in text
        assert hook.signing_secret[6:20] not in text
    assert "127.0.0.1 …" in pages[0]


def test_editing_keeps_the_url_unless_a_new_one_is_given(receiver, signed_in, team):
    hook = channel(team, "discord", receiver.url)
    url = reverse("notifications:channel", args=[team.slug, hook.pk])
    response = signed_in.post(url, {"name": "Renders", "events": ["task.failed"], "target": ""})
    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.target == receiver.url and hook.events == ["task.failed"] and hook.name == "Renders"
    assert TOKEN not in signed_in.get(url).content.decode()


def test_only_managers_manage_channels(client, team, teammate, outsider, receiver):
    hook = channel(team, "slack", receiver.url)
    client.force_login(teammate)  # a member
    assert client.get(reverse("notifications:channels", args=[team.slug])).status_code == 403
    assert client.post(reverse("notifications:channel_test", args=[team.slug, hook.pk])).status_code == 403
    assert client.post(reverse("notifications:channel_remove", args=[team.slug, hook.pk])).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("notifications:channel", args=[team.slug, hook.pk])).status_code == 404
    assert NotificationChannel.objects.filter(pk=hook.pk).exists()
    assert not Event.objects.exists()


def test_a_new_channel_covers_every_task_and_finished_and_failed_by_default(team):
    made = NotificationChannel(workspace=team, kind="slack", target="https://hooks.slack.com/services/T/B/x")
    made.save()
    assert made.events == ["task.completed", "task.failed"] and not made.only_mine


def test_a_refused_key_is_announced(receiver, team, owner):
    from teams.models import ProviderConnection
    from videos.models import ProviderState

    channel(team, "slack", receiver.url, events=["connection.key_refused"])
    connection = ProviderConnection.objects.create(
        workspace=team, name="Gateway", base_url="https://gw.example/v1"
    )
    state = ProviderState.objects.create(base_url=connection.base_url, connection=connection)
    state.block("The provider refused the key (HTTP 401).", "abcd")
    delivery.run()
    (got,) = receiver.received
    assert got.json["text"].startswith("The provider refused the key of connection Gateway in Team")


def test_a_silent_worker_is_announced_once_and_a_return_after_a_gap(receiver, team):
    channel(team, "slack", receiver.url, events=["worker.silent"])
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="other-host:1", last_seen_at=now - timedelta(minutes=10))
    check_workers("this-host:2", now - timedelta(hours=1), first=False, now=now)
    check_workers("third-host:3", now - timedelta(hours=1), first=False, now=now)  # the same news
    delivery.run()
    (got,) = receiver.received
    assert "other-host:1 has not reported since" in got.json["text"]

    # A worker starting after a gap says polling is back.
    check_workers("new-host:4", now, first=True, now=now)
    delivery.run()
    assert "The worker is back: no worker was running for 10 minutes" in receiver.received[1].json["text"]
    # The process a new worker replaced on the same host is no news.
    WorkerHeartbeat.objects.create(name="replaced-host:7", last_seen_at=now - timedelta(minutes=8))
    check_workers("replaced-host:8", now - timedelta(minutes=7), first=False, now=now)
    assert Event.objects.filter(kind=EventKind.WORKER_SILENT).count() == 2


def test_the_worker_delivers_and_reports_its_return_after_a_gap(receiver, team, owner, provider):
    from videos.worker import Worker

    channel(team, "slack", receiver.url, events=["task.completed", "worker.silent"])
    WorkerHeartbeat.objects.create(
        name="gone-host:1", last_seen_at=timezone.now() - timedelta(minutes=30), stopped_at=timezone.now()
    )
    finish(make_task(owner, "vid_worker", workspace=team))
    worker = Worker(Poller(VideoAPIClient(provider.base_url, "sk-test")), keep_copies=False)
    assert worker.run_once().failed == []
    assert [got.json["text"] for got in receiver.received] == ["Video finished: vid_worker in Team"]
    worker.beat()  # its first beat: no worker beat for 30 minutes
    worker.beat()  # the next ones are no news
    worker.deliver()
    assert (
        receiver.received[1]
        .json["text"]
        .startswith("The worker is back: no worker was running for 30 minutes")
    )
    assert len(receiver.received) == 2


def test_old_events_go_and_each_log_keeps_its_newest_attempts(receiver, team, owner):
    hook = channel(team, "slack", receiver.url)
    finish(make_task(owner, "vid_old", workspace=team))
    delivery.run()
    Event.objects.update(created_at=timezone.now() - delivery.EVENTS_KEPT - timedelta(minutes=1))
    Attempt.objects.bulk_create(
        [Attempt(channel=hook, event_kind="test", event_id=f"msg_{n}") for n in range(delivery.LOG_KEPT + 5)]
    )
    delivery.prune()
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert hook.attempts.count() == delivery.LOG_KEPT
    assert not hook.attempts.filter(event_id__in=["msg_0", "msg_4"]).exists()


class Redirecting(Receiver):
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            self.received.append(Received(handler.path, {}, b""))
        handler.send_response(307)
        handler.send_header("Location", "/elsewhere")
        handler.send_header("Content-Length", "0")
        handler.end_headers()


class Hanging(Receiver):
    """Takes the request and answers nothing until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.release.wait(10)


@pytest.mark.parametrize("server_class", [Redirecting, Hanging])
def test_a_redirect_is_not_followed_and_a_silent_receiver_is_cut_off(
    server_class, settings, team, owner, monkeypatch
):
    from notifications import transports

    monkeypatch.setattr(transports, "TOTAL_TIMEOUT", 0.5)
    server = server_class().start()
    settings.VIDEO_FETCH_ALLOW_HOSTS = [f"127.0.0.1:{server.server.server_address[1]}"]
    try:
        hook = channel(team, "webhook", server.url)
        finish(make_task(owner, "vid_odd", workspace=team))
        delivery.run()
    finally:
        if isinstance(server, Hanging):
            server.release.set()
        server.stop()
    attempt = Attempt.objects.get(channel=hook)
    assert not attempt.ok
    if server_class is Redirecting:
        assert [got.path for got in server.received] == [f"/hooks/{TOKEN}"]
        assert attempt.status_code == 307 and "not followed" in attempt.error
    else:
        assert "0.5 s" in attempt.error and attempt.duration_ms < 5000
    assert Delivery.objects.get().status == Delivery.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_sends_the_test_within_seconds(receiver, provider, client, owner, team):
    import time

    from django.db import connections

    from videos.worker import Timing, Worker

    hook = channel(team, "webhook", receiver.url)
    client.force_login(owner)
    stop = threading.Event()
    worker = Worker(
        Poller(VideoAPIClient(provider.base_url, "sk-test")),
        should_stop=stop.is_set,
        keep_copies=False,
        timing=Timing(idle=0.05, heartbeat=0.05, keeper_join=5),
    )

    def run() -> None:
        try:
            worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        client.post(reverse("notifications:channel_test", args=[team.slug, hook.pk]))
        deadline = time.monotonic() + 5
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [got.json["type"] for got in receiver.received] == ["test"]
    finally:
        stop.set()
        thread.join(10)
        worker.poller.close()
    assert not thread.is_alive()
