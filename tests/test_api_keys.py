"""API keys: made by managers on the workspace's page or by `manage.py create_api_key`,
shown once, stored hashed, revocable."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from api.models import ApiKey
from tests.pages import join, make_task


def test_create_api_key_prints_only_the_key_and_it_works(client, team, owner):
    make_task(owner, "video_seen", workspace=team)
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "team", "--read-only", "--name", "grafana", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    plaintext = lines[0]
    assert plaintext.startswith("vdk_") and plaintext not in err.getvalue()
    key = ApiKey.objects.get()
    assert (key.name, key.read_only, key.workspace) == ("grafana", True, team)
    answer = client.get(reverse("api:tasks"), headers={"Authorization": f"Bearer {plaintext}"})
    assert answer.status_code == 200
    assert answer.json()["data"][0]["task_id"] == "video_seen"


def test_a_provisioned_read_write_key_adds_tasks_as_the_workspace_owner(client, team, owner):
    out = io.StringIO()
    call_command("create_api_key", "team", stdout=out, stderr=io.StringIO())
    plaintext = out.getvalue().strip()
    answer = client.post(
        reverse("api:tasks"),
        {"task_id": "video_prov"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {plaintext}"},
    )
    assert answer.status_code == 201
    assert answer.json()["added_by"] == {"type": "api_key", "name": "provisioned"}
    from videos.models import VideoTask

    assert VideoTask.objects.get(task_id="video_prov").owner == owner


def test_create_api_key_refuses_an_unknown_workspace(db):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("create_api_key", "nowhere", stdout=io.StringIO())


def test_keys_are_stored_hashed(team, owner):
    key, plaintext = ApiKey.issue(team, "ci", read_only=False, created_by=owner)
    dump = io.StringIO()
    call_command("dumpdata", "api", stdout=dump)
    secret = plaintext.removeprefix("vdk_")
    assert secret not in dump.getvalue()
    assert key.key_hash in dump.getvalue()
    assert secret not in repr(key) and secret not in str(key)
    assert ApiKey.objects.by_plaintext(plaintext) == key


def test_a_manager_makes_a_key_shown_once_and_revokes_it(client, team, owner, teammate):
    join(team, teammate, "manager")
    client.force_login(teammate)
    url = reverse("api_keys:list", args=["team"])
    made = client.post(url, {"name": "nightly export", "access": "read_write"})
    assert made.status_code == 201
    key = ApiKey.objects.get()
    assert (key.name, key.read_only, key.created_by) == ("nightly export", False, teammate)
    html = made.content.decode()
    plaintext = next(
        word
        for word in html.replace("<", " ").replace(">", " ").split()
        if word.startswith("vdk_") and len(word) > 20
    )
    assert ApiKey.objects.by_plaintext(plaintext) == key
    assert made["Cache-Control"].count("no-store") or "no-cache" in made["Cache-Control"]
    # Never again: not on the page, not in a message.
    again = client.get(url).content.decode()
    assert plaintext not in again
    assert key.prefix in again and "nightly export" in again and "never" in again

    api = client.get(reverse("api:tasks"), headers={"Authorization": f"Bearer {plaintext}"})
    assert api.status_code == 200
    assert "Last used" in client.get(url).content.decode()
    revoked = client.post(reverse("api_keys:revoke", args=["team", key.pk]), follow=True)
    assert "revoked" in revoked.content.decode()
    assert (
        client.get(reverse("api:tasks"), headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
    )


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_below_manager_the_keys_page_is_403_and_outside_404(client, team, owner, teammate, outsider, role):
    key, _ = ApiKey.issue(team, "ci", read_only=True, created_by=owner)
    join(team, teammate, role)
    client.force_login(teammate)
    assert client.get(reverse("api_keys:list", args=["team"])).status_code == 403
    assert (
        client.post(reverse("api_keys:list", args=["team"]), {"name": "x", "access": "read_only"}).status_code
        == 403
    )
    assert client.post(reverse("api_keys:revoke", args=["team", key.pk])).status_code == 403
    client.force_login(outsider)
    assert client.post(reverse("api_keys:revoke", args=["team", key.pk])).status_code == 404
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().is_active


def test_an_operator_revokes_keys_in_the_admin_and_never_sees_a_hash(client, team, owner):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", password="root-password-1")
    key, plaintext = ApiKey.issue(team, "ci", read_only=False, created_by=owner)
    client.force_login(admin_user)
    listing = client.get(reverse("admin:api_apikey_changelist")).content.decode()
    assert key.prefix in listing and key.key_hash not in listing
    page = client.get(reverse("admin:api_apikey_change", args=[key.pk])).content.decode()
    assert key.key_hash not in page and plaintext.removeprefix("vdk_") not in page
    assert client.get(reverse("admin:api_apikey_add")).status_code == 403
    client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert ApiKey.objects.by_plaintext(plaintext) is None
