"""`manage.py reencrypt`: a key rotation end to end, and what it says when a secret is lost."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from dashboard import encryption
from teams.models import ProviderConnection, Workspace

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_LOST = Fernet.generate_key().decode()


@pytest.fixture
def workspace(db) -> Workspace:
    return Workspace.objects.create(name="Studio", slug="studio")


def connect(workspace: Workspace, name: str, plaintext: str) -> ProviderConnection:
    connection = ProviderConnection(workspace=workspace, name=name, base_url="https://gateway.example.com/v1")
    connection.set_api_key(plaintext)
    connection.save()
    return connection


def reencrypt(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reencrypt", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored(connection: ProviderConnection) -> str:
    return ProviderConnection.objects.values_list("api_key_encrypted", flat=True).get(pk=connection.pk)


def test_rotation_end_to_end(settings, workspace):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    plaintexts = {f"gateway-{n}": f"sk-secret-for-gateway-{n}-0123456789" for n in range(3)}
    connections = [connect(workspace, name, key) for name, key in plaintexts.items()]
    connect(workspace, "no key yet", "")

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    out, err = reencrypt()
    assert out.strip() == "Re-encrypted 3 secrets (teams.ProviderConnection: 3)."
    assert err == ""
    for connection in connections:
        assert encryption.is_current(stored(connection))

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B]
    for connection in connections:
        fresh = ProviderConnection.objects.get(pk=connection.pk)
        assert fresh.api_key() == plaintexts[fresh.name]
        assert fresh.key_last4 == plaintexts[fresh.name][-4:]
    for secret in plaintexts.values():
        assert secret not in out + err
    assert ProviderConnection.objects.get(name="no key yet").api_key_encrypted == ""


def test_an_unreadable_row_fails_the_command_by_pk_and_the_others_are_still_rotated(settings, workspace):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_LOST]
    lost = connect(workspace, "lost", "sk-lost-secret-0123456789")
    lost_token = stored(lost)
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    kept = [connect(workspace, f"kept-{n}", f"sk-kept-secret-{n}-0123456789") for n in range(2)]

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("reencrypt", stdout=out, stderr=err)

    assert "1 secret could not be decrypted" in str(caught.value)
    assert caught.value.returncode == 1  # what manage.py exits with
    assert f"teams.ProviderConnection pk={lost.pk}:" in err.getvalue()
    assert out.getvalue().strip() == "Re-encrypted 2 secrets (teams.ProviderConnection: 2)."
    everything = out.getvalue() + err.getvalue() + str(caught.value)
    for material in ("sk-lost-secret-0123456789", lost_token, KEY_LOST, KEY_A, KEY_B):
        assert material not in everything

    assert stored(lost) == lost_token  # left alone, for whoever still has its key
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B]
    assert [c.api_key() for c in ProviderConnection.objects.filter(pk__in=[c.pk for c in kept])] == [
        "sk-kept-secret-0-0123456789",
        "sk-kept-secret-1-0123456789",
    ]


def test_dry_run_writes_nothing(settings, workspace):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    connection = connect(workspace, "gateway", "sk-dry-run-secret-0123456789")
    before = stored(connection)

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    out, err = reencrypt("--dry-run")
    assert "Would re-encrypt 1 secret (teams.ProviderConnection: 1)" in out
    assert "sk-dry-run-secret-0123456789" not in out + err
    assert stored(connection) == before
    assert not encryption.is_current(before)


def test_batches_cover_every_row(settings, workspace, monkeypatch):
    monkeypatch.setattr("videos.management.commands.reencrypt.BATCH_SIZE", 2)
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    connections = [connect(workspace, f"gateway-{n}", f"sk-batch-secret-{n}-0123456789") for n in range(5)]

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    out, _ = reencrypt()
    assert "Re-encrypted 5 secrets" in out
    assert all(encryption.is_current(stored(c)) for c in connections)


def test_nothing_stored_is_not_an_error(db):
    out, err = reencrypt()
    assert out.strip() == "Re-encrypted 0 secrets."
    assert err == ""
