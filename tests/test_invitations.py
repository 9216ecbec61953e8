"""Invitations: the email and its single-use link, joining as an existing user or as a
newcomer who makes an account, and every way a link stops working."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from smtplib import SMTPException

import pytest
from django.contrib.auth import get_user_model
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.utils import timezone

from teams.models import AuditEntry, Invitation, Membership
from tests.pages import join

pytestmark = pytest.mark.django_db

SETTINGS = "/w/team/settings/"
INVITE = "/w/team/invitations/"
JOIN = "/invitations/join/"
GOOD_PASSWORD = "a-long-passphrase-9"


def invite(client, email="newcomer@example.com", role="member"):
    return client.post(INVITE, {"email": email, "role": role})


def link_in(message) -> str:
    match = re.search(r"http://testserver(/invitations/[A-Za-z0-9_-]{20,}/)", message.body)
    assert match, message.body
    return match.group(1)


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def in_team(user) -> Membership | None:
    return Membership.objects.filter(workspace__slug="team", user=user).first()


def test_a_manager_invites_by_email_with_a_single_use_link_that_expires(signed_in, team, mailoutbox):
    response = invite(signed_in, "Newcomer@Example.com", "viewer")
    assert (response.status_code, response["Location"]) == (302, SETTINGS)

    [message] = mailoutbox
    assert message.to == ["newcomer@example.com"]
    assert message.subject == "owner invited you to Team on Video tasks"
    assert "as a viewer" in message.body
    invitation = Invitation.objects.get()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert str(invitation.expires_at.year) in message.body
    # Only a hash of the token is stored.
    token = link_in(message).split("/")[2]
    assert token not in repr(list(Invitation.objects.values()))

    page = signed_in.get(SETTINGS).content.decode()
    assert "newcomer@example.com" in page
    assert f"/w/team/invitations/{invitation.pk}/withdraw/" in page
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INVITED)
    assert (entry.actor_name, entry.target, entry.detail) == ("owner", "newcomer@example.com", "as viewer")


def test_a_newcomer_makes_an_account_from_the_link_and_lands_on_the_board(signed_in, team, mailoutbox):
    invite(signed_in)
    link = link_in(mailoutbox[0])
    newcomer = Client()

    opened = newcomer.get(link)
    # The token leaves the address bar at once: the page itself is at a token-less URL.
    assert (opened.status_code, opened["Location"]) == (302, JOIN)
    page = newcomer.get(JOIN).content.decode()
    assert "Join Team as member" in page
    assert 'value="newcomer@example.com"' in page
    assert "/accounts/login/?next=/invitations/join/" in page.replace("%2F", "/")

    form = {"username": "newcomer", "email": "newcomer@example.com"}
    weak = newcomer.post(JOIN, {**form, "password1": "12345678", "password2": "12345678"})
    assert weak.status_code == 400
    assert "too common" in weak.content.decode()
    mismatched = newcomer.post(JOIN, {**form, "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD + "x"})
    assert mismatched.status_code == 400
    taken = newcomer.post(
        JOIN, {**form, "username": "owner", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD}
    )
    assert taken.status_code == 400
    assert not get_user_model().objects.filter(username="newcomer").exists()

    joined = newcomer.post(JOIN, {**form, "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert (joined.status_code, joined["Location"]) == (302, "/w/team/")
    user = get_user_model().objects.get(username="newcomer")
    assert user.email == "newcomer@example.com"
    assert user.check_password(GOOD_PASSWORD)
    assert in_team(user).role == "member"
    # Signed in, and "/" opens the workspace they were invited to.
    board = newcomer.get("/")
    assert board.status_code == 200
    assert board.context["workspace"].slug == "team"
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.JOINED)
    assert (entry.actor_name, entry.target, entry.detail) == (
        "newcomer",
        "newcomer",
        "as member, invited by owner",
    )

    # The link worked once.
    again = Client()
    again.get(link)
    gone = again.get(JOIN)
    assert gone.status_code == 410
    assert "This invitation is no longer valid" in gone.content.decode()
    assert (
        again.post(
            JOIN, {**form, "username": "second", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD}
        ).status_code
        == 410
    )
    assert not get_user_model().objects.filter(username="second").exists()


def test_an_existing_user_joins_with_one_button_and_a_second_use_joins_no_one(
    signed_in, team, outsider, mailoutbox
):
    invite(signed_in, "outsider@example.com", "viewer")
    link = link_in(mailoutbox[0])
    person = signed_in_as(outsider)

    assert person.get(link)["Location"] == JOIN
    page = person.get(JOIN).content.decode()
    assert "Join Team as viewer" in page
    assert "You are signed in as <strong>outsider</strong>" in page
    assert in_team(outsider) is None  # opening the page joins no one

    joined = person.post(JOIN)
    assert (joined.status_code, joined["Location"]) == (302, "/w/team/")
    assert in_team(outsider).role == "viewer"
    assert person.get("/w/team/").status_code == 200

    latecomer = signed_in_as(get_user_model().objects.create_user("latecomer", password="x"))
    latecomer.get(link)
    assert latecomer.get(JOIN).status_code == 410
    assert latecomer.post(JOIN).status_code == 410
    assert in_team(get_user_model().objects.get(username="latecomer")) is None
    assert AuditEntry.objects.filter(kind=AuditEntry.Kind.JOINED).count() == 1


def test_someone_already_in_the_workspace_keeps_their_role(signed_in, team, teammate, mailoutbox):
    invite(signed_in, "someone@example.com", "viewer")
    person = signed_in_as(teammate)
    person.get(link_in(mailoutbox[0]))
    assert person.post(JOIN)["Location"] == "/w/team/"
    assert in_team(teammate).role == "member"
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.JOINED).exists()


def test_signing_in_from_the_invitation_page_comes_back_to_it(signed_in, team, outsider, mailoutbox):
    invite(signed_in, "outsider@example.com")
    visitor = Client()
    visitor.get(link_in(mailoutbox[0]))
    credentials = {"username": "outsider", "password": "outsider-password-1", "next": JOIN}
    signed = visitor.post(f"/accounts/login/?next={JOIN}", credentials)
    assert (signed.status_code, signed["Location"]) == (302, JOIN)
    assert "Join Team as member" in visitor.get(JOIN).content.decode()
    assert visitor.post(JOIN)["Location"] == "/w/team/"
    assert in_team(outsider).role == "member"


def test_an_expired_link_is_no_longer_valid(signed_in, team, outsider, mailoutbox):
    invite(signed_in, "outsider@example.com")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    person = signed_in_as(outsider)
    person.get(link_in(mailoutbox[0]))
    assert "no longer valid" in person.get(JOIN).content.decode()
    assert person.post(JOIN).status_code == 410
    assert in_team(outsider) is None
    # Nor is it listed as pending.
    assert "/withdraw/" not in signed_in.get(SETTINGS).content.decode()


def test_a_withdrawn_link_is_no_longer_valid(signed_in, team, outsider, mailoutbox):
    invite(signed_in, "outsider@example.com")
    invitation = Invitation.objects.get()
    withdrawn = signed_in.post(f"/w/team/invitations/{invitation.pk}/withdraw/")
    assert withdrawn["Location"] == SETTINGS
    assert not Invitation.objects.exists()
    assert "/withdraw/" not in signed_in.get(SETTINGS).content.decode()
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.INVITATION_WITHDRAWN)
    assert (entry.actor_name, entry.target) == ("owner", "outsider@example.com")

    person = signed_in_as(outsider)
    person.get(link_in(mailoutbox[0]))
    assert person.post(JOIN).status_code == 410
    assert in_team(outsider) is None


def test_inviting_the_same_address_again_sends_a_fresh_link_and_the_old_one_stops_working(
    signed_in, team, outsider, mailoutbox
):
    invite(signed_in, "outsider@example.com", "member")
    again = invite(signed_in, "OUTSIDER@example.com", "viewer")
    assert again["Location"] == SETTINGS
    assert len(mailoutbox) == 2
    old, fresh = link_in(mailoutbox[0]), link_in(mailoutbox[1])
    assert old != fresh
    assert Invitation.objects.pending().count() == 1
    assert "fresh link" in AuditEntry.objects.filter(kind=AuditEntry.Kind.INVITED).first().detail

    person = signed_in_as(outsider)
    person.get(old)
    assert person.get(JOIN).status_code == 410
    person.get(fresh)
    assert person.post(JOIN)["Location"] == "/w/team/"
    assert in_team(outsider).role == "viewer"


def test_a_made_up_token_is_the_same_redirect_then_no_longer_valid(client, outsider):
    opened = client.get("/invitations/not-a-real-token/")
    assert (opened.status_code, opened["Location"]) == (302, JOIN)
    assert client.get(JOIN).status_code == 410
    # With nothing opened at all.
    assert Client().get(JOIN).status_code == 410
    assert Client().get("/invitations/" + "x" * 500 + "/", follow=True).status_code == 410


def test_no_log_line_carries_the_token(signed_in, team, outsider, mailoutbox, caplog):
    invite(signed_in, "outsider@example.com")
    link = link_in(mailoutbox[0])
    token = link.split("/")[2]
    request_log = logging.getLogger("django.request")
    request_log.addHandler(caplog.handler)  # "django" does not propagate to the root
    try:
        with caplog.at_level(logging.DEBUG):
            person = signed_in_as(outsider)
            person.get(link, follow=True)
            person.post(JOIN)
            person.get(link, follow=True)  # used: the 410 is logged, without the token
            Client().get(link, follow=True)
    finally:
        request_log.removeHandler(caplog.handler)
    assert "Gone: /invitations/join/" in caplog.text
    assert token not in caplog.text


def test_someone_already_in_the_workspace_is_not_invited(signed_in, team, teammate, mailoutbox):
    teammate.email = "teammate@example.com"
    teammate.save()
    response = invite(signed_in, "Teammate@example.com")
    assert response.status_code == 400
    assert "already in the workspace" in response.content.decode()
    assert mailoutbox == []
    assert not Invitation.objects.exists()


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise SMTPException("421 service not available")


def test_an_email_that_cannot_be_sent_invites_no_one_and_says_so(signed_in, team, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    response = invite(signed_in)
    assert response["Location"] == SETTINGS
    assert not Invitation.objects.exists()
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.INVITED).exists()
    assert "could not be sent" in signed_in.get(SETTINGS).content.decode()


def test_only_an_owner_invites_an_owner(signed_in, team, teammate, mailoutbox):
    join(team, teammate, "manager")
    manager = signed_in_as(teammate)
    refused = invite(manager, "boss@example.com", "owner")
    assert refused.status_code == 400
    assert not Invitation.objects.exists()
    assert invite(manager, "helper@example.com", "manager").status_code == 302
    assert invite(signed_in, "boss@example.com", "owner").status_code == 302
    owner_invitation = Invitation.objects.get(role="owner")
    # Nor may a manager withdraw an owner's invitation.
    assert manager.post(f"/w/team/invitations/{owner_invitation.pk}/withdraw/").status_code == 403
    assert Invitation.objects.filter(pk=owner_invitation.pk).exists()


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_below_manager_nobody_invites_or_withdraws(signed_in, team, teammate, mailoutbox, role):
    invite(signed_in, "pending@example.com")
    pending = Invitation.objects.get()
    join(team, teammate, role)
    person = signed_in_as(teammate)
    assert invite(person, "someone@example.com").status_code == 403
    assert person.post(f"/w/team/invitations/{pending.pk}/withdraw/").status_code == 403
    assert list(Invitation.objects.all()) == [pending]
    assert len(mailoutbox) == 1
    page = person.get(SETTINGS).content.decode()
    assert "pending@example.com" not in page
    assert "/w/team/invitations/" not in page


def test_outsiders_get_404_for_the_invitation_endpoints(signed_in, team, outsider, mailoutbox):
    invite(signed_in, "pending@example.com")
    pending = Invitation.objects.get()
    person = signed_in_as(outsider)
    assert invite(person, "someone@example.com").status_code == 404
    assert person.post(f"/w/team/invitations/{pending.pk}/withdraw/").status_code == 404
    assert Invitation.objects.count() == 1 and len(mailoutbox) == 1


def test_the_account_form_points_assistive_technology_at_text_that_exists(signed_in, team, mailoutbox):
    from tests.test_accessibility import dangling, references

    invite(signed_in)
    newcomer = Client()
    newcomer.get(link_in(mailoutbox[0]))
    page = newcomer.get(JOIN).content.decode()
    assert dangling(page) == []
    errors = newcomer.post(JOIN, {"username": "", "email": "x", "password1": "1", "password2": "2"})
    html = errors.content.decode()
    assert dangling(html) == []
    assert any(ref.endswith("_error") for _, ref in references(html))
