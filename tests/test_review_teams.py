"""Security review of the teams work: each test here demonstrates a flaw found by reading
the code as an attacker would (and now guards its fix)."""

from __future__ import annotations

import pytest
from django.test import Client

from teams.models import Invitation, Membership, Role, Workspace
from tests.pages import join

pytestmark = pytest.mark.django_db


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_cannot_replace_an_owners_pending_invitation_to_become_owner(
    signed_in, team, teammate, mailoutbox
):
    """Managers may not withdraw an invitation to become an owner (withdraw_invitation says
    so); inviting the same address again must not do it by the back door, nor turn the
    owner's invitation into a lesser one."""
    response = signed_in.post("/w/team/invitations/", {"email": "boss@example.com", "role": "owner"})
    assert response.status_code == 302
    owners_invitation = Invitation.objects.get(email="boss@example.com")

    join(team, teammate, Role.MANAGER)
    manager = signed_in_as(teammate)
    response = manager.post("/w/team/invitations/", {"email": "boss@example.com", "role": "viewer"})

    assert response.status_code in (400, 403)
    still = Invitation.objects.filter(email="boss@example.com").get()
    assert (still.pk, still.role) == (owners_invitation.pk, Role.OWNER)
    assert len(mailoutbox) == 1  # only the owner's email went out


@pytest.mark.parametrize("how", ["removed by a co-owner", "left"])
def test_the_person_a_personal_workspace_is_for_stays_in_it(owner, teammate, how):
    """A personal workspace is its person's for good (it cannot be deleted, and "/" falls
    back to it): taking them out of it would leave them an account whose every board is
    a server error, once they are in no other workspace."""
    personal = Workspace.objects.personal_for(owner)
    join(personal, teammate, Role.OWNER)  # handed over, say, as "Make owner" does
    me = Membership.objects.get(workspace=personal, user=owner)

    if how == "left":
        signed_in_as(owner).post(f"/w/{personal.slug}/leave/")
    else:
        signed_in_as(teammate).post(f"/w/{personal.slug}/people/{me.pk}/remove/")

    assert Membership.objects.filter(workspace=personal, user=owner).exists()
    assert signed_in_as(owner).get("/").status_code == 200


def test_a_manager_cannot_send_the_stored_key_to_a_server_of_their_choosing(
    signed_in, team, teammate, settings, monkeypatch
):
    """The key is write-only: a manager who did not enter it must not be able to read it
    back by pointing the connection at their own server (and pressing Test, or waiting for
    the worker). Moving a connection to another origin takes the key typed again."""
    from teams import connection_forms

    settings.VIDEO_FETCH_ALLOW_HOSTS = []
    monkeypatch.setattr(connection_forms, "resolve", lambda host, port: ["93.184.216.34"])
    added = signed_in.post(
        "/w/team/connections/add/",
        {"name": "Gateway", "base_url": "https://gw.example.com/v1", "api_key": "sk-owners-secret-1234"},
    )
    assert added.status_code == 302
    connection = team.connections.get()

    join(team, teammate, Role.MANAGER)
    manager = signed_in_as(teammate)
    edit = f"/w/team/connections/{connection.pk}/"
    moved = manager.post(
        edit, {"name": "Gateway", "base_url": "https://attacker.example.net/v1", "api_key": ""}
    )
    assert moved.status_code == 200  # the form again, with the reason
    assert "Enter the key again" in moved.content.decode()
    connection.refresh_from_db()
    assert connection.base_url == "https://gw.example.com/v1"

    # Another path on the same server keeps the key; a new key may go anywhere public.
    same_server = {"name": "Gateway", "base_url": "https://gw.example.com/v2", "api_key": ""}
    assert manager.post(edit, same_server).status_code == 302
    with_key = {"name": "Gateway", "base_url": "https://other.example.net/v1", "api_key": "sk-new-key-5678"}
    assert manager.post(edit, with_key).status_code == 302
    connection.refresh_from_db()
    assert (connection.base_url, connection.api_key()) == ("https://other.example.net/v1", "sk-new-key-5678")


@pytest.mark.parametrize("change", ["demoted", "removed"])
def test_a_stale_role_never_leaves_a_workspace_without_an_owner(owner, teammate, team, change):
    """A view reads the person's membership, then changes it: meanwhile they may have been
    made an owner, and the other owner stepped down. The last-owner rule must judge the
    role the row has now, not the one read before."""
    from teams.models import LastOwner

    join(team, teammate, Role.MANAGER)
    stale = Membership.objects.get(workspace=team, user=teammate)  # read as a manager
    # Meanwhile: the owner hands over and steps down.
    Membership.objects.get(workspace=team, user=teammate).change_role(Role.OWNER)
    Membership.objects.get(workspace=team, user=owner).change_role(Role.MANAGER)

    with pytest.raises(LastOwner):
        stale.change_role(Role.MEMBER) if change == "demoted" else stale.remove()
    assert team.owners().count() == 1
