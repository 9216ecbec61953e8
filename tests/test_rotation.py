"""Rotation end to end: a connection's key stored under one encryption key, rotated to a
second with `manage.py reencrypt`, the first dropped, and the worker polls on with it."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from teams.models import ProviderConnection
from tests.fake_provider import Reply
from videos.models import ProviderState, VideoTask
from videos.polling import Poller

PROVIDER_SIDE_KEY = "sk-rotation-0123456789abcdef"


def poll_once() -> None:
    poller = Poller.from_settings()
    try:
        poller.run_pass()
    finally:
        poller.close()


@pytest.mark.django_db(transaction=True)
def test_rotating_the_encryption_key_keeps_polling(provider, team, owner, settings, capsys):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.VIDEO_ENCRYPTION_KEYS = [first]
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key(PROVIDER_SIDE_KEY)
    connection.save()
    stored_before = connection.api_key_encrypted
    task = VideoTask.objects.create(owner=owner, workspace=team, connection=connection, task_id="video_r")
    provider.script("video_r", Reply(200, {"id": "video_r", "status": "in_progress", "progress": 20}))
    poll_once()
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {PROVIDER_SIDE_KEY}"]

    # The new key goes first; the old one still decrypts until reencrypt has run.
    settings.VIDEO_ENCRYPTION_KEYS = [second, first]
    call_command("reencrypt")
    connection.refresh_from_db()
    assert connection.api_key_encrypted != stored_before
    assert (
        Fernet(second.encode()).decrypt(connection.api_key_encrypted.encode()).decode() == PROVIDER_SIDE_KEY
    )

    # The old key dropped: the worker still reads the key, and polls on with it.
    settings.VIDEO_ENCRYPTION_KEYS = [second]
    provider.script("video_r", Reply(200, {"id": "video_r", "status": "completed", "progress": 100}))
    VideoTask.objects.filter(pk=task.pk).update(next_poll_at=None)
    poll_once()
    task.refresh_from_db()
    assert task.status == "completed"
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {PROVIDER_SIDE_KEY}"] * 2
    state = ProviderState.objects.filter(connection=connection).first()
    assert state is None or not state.blocked_reason
    assert PROVIDER_SIDE_KEY not in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_dropping_a_key_before_reencrypt_blocks_only_that_connection(provider, team, owner, settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.VIDEO_ENCRYPTION_KEYS = [first]
    connection = ProviderConnection(workspace=team, name="Gateway", base_url=provider.base_url)
    connection.set_api_key(PROVIDER_SIDE_KEY)
    connection.save()
    VideoTask.objects.create(owner=owner, workspace=team, connection=connection, task_id="video_r")
    provider.script("video_r", Reply(200, {"id": "video_r", "status": "in_progress", "progress": 20}))

    settings.VIDEO_ENCRYPTION_KEYS = [second]  # the operator forgot reencrypt
    poll_once()
    assert provider.requests == []
    state = ProviderState.objects.get(connection=connection)
    assert "decrypted" in state.blocked_reason
    # Entering the key again lifts it, and polling resumes.
    connection.set_api_key(PROVIDER_SIDE_KEY)
    connection.save()
    poll_once()
    assert [seen.authorization for seen in provider.requests] == [f"Bearer {PROVIDER_SIDE_KEY}"]
