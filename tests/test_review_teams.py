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
