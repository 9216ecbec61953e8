"""The audit trail page: who may read it, what it shows (escaped), its pages, and the
entries the workspace's people actions leave."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from teams.models import AuditEntry, Invitation, Membership
from tests.pages import join

pytestmark = pytest.mark.django_db

AUDIT = "/w/team/audit/"


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(html: str) -> list[list[str]]:
    """The trail's table as text cells, row by row."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_managers_read_the_trail_newest_first_and_escaped(team, owner, teammate):
    AuditEntry.record(team, owner, AuditEntry.Kind.INVITED, "first@example.com", "as member")
    AuditEntry.record(team, teammate, AuditEntry.Kind.TRACKED, "<script>alert(1)</script>", '"><img src=x>')
    join(team, teammate, "manager")
    response = signed_in_as(teammate).get(AUDIT)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)" not in html and "<img src=x>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    [newest, oldest] = rows(html)
    assert newest[1:] == [
        "teammate",
        "Tracked a task",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&quot;&gt;&lt;img src=x&gt;",
    ]
    assert oldest[1:] == ["owner", "Invited someone", "first@example.com", "as member"]
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT', html)


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_below_manager_the_trail_is_403(team, teammate, role):
    join(team, teammate, role)
    assert signed_in_as(teammate).get(AUDIT).status_code == 403


def test_outside_the_workspace_the_trail_is_404(team, outsider):
    AuditEntry.record(team, None, AuditEntry.Kind.JOINED, "someone")
    assert signed_in_as(outsider).get(AUDIT).status_code == 404


def test_entries_of_another_workspace_never_show(signed_in, team, owner, outsider):
    from teams.models import Workspace

    other = Workspace.objects.personal_for(outsider)
    AuditEntry.record(other, outsider, AuditEntry.Kind.RENAMED, "secret-name")
    html = signed_in.get(AUDIT).content.decode()
    assert "secret-name" not in html
    # Nor through the "older" link's anchor.
    entry = AuditEntry.objects.get(workspace=other)
    assert "secret-name" not in signed_in.get(f"{AUDIT}?before={entry.pk}").content.decode()


def test_the_trail_comes_in_pages_of_200(signed_in, team, owner):
    start = timezone.now() - timedelta(days=1)
    AuditEntry.objects.bulk_create(
        AuditEntry(
            workspace=team,
            actor=owner,
            actor_name="owner",
            kind="tracked",
            target=f"task {n}",
            at=start + timedelta(seconds=n),
        )
        for n in range(205)
    )
    first = signed_in.get(AUDIT).content.decode()
    first_rows = rows(first)
    assert len(first_rows) == 200
    assert first_rows[0][3] == "task 204" and first_rows[-1][3] == "task 5"
    older = re.search(r'href="(/w/team/audit/\?before=\d+)"', first).group(1)
    second = signed_in.get(older).content.decode()
    assert [row[3] for row in rows(second)] == [f"task {n}" for n in range(4, -1, -1)]
    assert "?before=" not in second
    # A malformed or huge anchor is just the first page.
    assert len(rows(signed_in.get(f"{AUDIT}?before=x").content.decode())) == 200
    assert len(rows(signed_in.get(f"{AUDIT}?before={'9' * 40}").content.decode())) == 200


def test_each_people_action_leaves_its_entry(signed_in, team, owner, teammate, outsider, mailoutbox):
    outsider.email = "outsider@example.com"
    outsider.save()
    signed_in.post("/w/team/invitations/", {"email": "gone@example.com", "role": "viewer"})
    signed_in.post(f"/w/team/invitations/{Invitation.objects.get().pk}/withdraw/")
    signed_in.post("/w/team/invitations/", {"email": "outsider@example.com", "role": "member"})
    link = re.search(r"http://testserver(/invitations/\S+/)", mailoutbox[-1].body).group(1)
    newcomer = signed_in_as(outsider)
    newcomer.get(link)
    newcomer.post("/invitations/join/")
    teammate_pk = Membership.objects.get(workspace=team, user=teammate).pk
    signed_in.post(f"/w/team/people/{teammate_pk}/role/", {"role": "manager"})
    signed_in.post(f"/w/team/people/{teammate_pk}/remove/")
    newcomer.post("/w/team/leave/")
    signed_in.post("/w/team/rename/", {"name": "Crew", "slug": "crew"})

    entries = list(
        AuditEntry.objects.filter(workspace=team)
        .order_by("at", "pk")
        .values_list("actor_name", "kind", "target", "detail")
    )
    assert entries == [
        ("owner", "invited", "gone@example.com", "as viewer"),
        ("owner", "invitation_withdrawn", "gone@example.com", ""),
        ("owner", "invited", "outsider@example.com", "as member"),
        ("outsider", "joined", "outsider", "as member, invited by owner"),
        ("owner", "role_changed", "teammate", "member → manager"),
        ("owner", "member_removed", "teammate", "was manager"),
        ("outsider", "left", "outsider", "was member"),
        ("owner", "renamed", "Crew", "Team (team) → Crew (crew)"),
    ]
    # And the page shows them, for a manager of the renamed workspace.
    html = signed_in.get("/w/crew/audit/").content.decode()
    assert len(rows(html)) == len(entries)
    assert "member → manager" in html
    assert get_user_model().objects.filter(username="outsider").exists()
