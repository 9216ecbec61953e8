"""A workspace's own pages: who sees what on its settings page, creating, renaming and
deleting workspaces, roles, removing people, leaving and handing ownership over."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from teams.models import AuditEntry, Invitation, Membership, ProviderConnection, Workspace
from teams.roles import Action, allows
from tests.pages import join, make_task
from videos.models import VideoTask

pytestmark = pytest.mark.django_db

SETTINGS = "/w/team/settings/"


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def role_of(user, slug="team") -> str | None:
    membership = Membership.objects.filter(workspace__slug=slug, user=user).first()
    return membership.role if membership else None


def membership(user, slug="team") -> Membership:
    return Membership.objects.get(workspace__slug=slug, user=user)


def page_messages(client) -> list[str]:
    return [str(message) for message in client.get(SETTINGS).context["messages"]]


@pytest.fixture
def manager(team):
    user = get_user_model().objects.create_user("manager", password="manager-password-1")
    join(team, user, "manager")
    return user


@pytest.fixture
def viewer(team):
    user = get_user_model().objects.create_user("viewer", password="viewer-password-1")
    join(team, user, "viewer")
    return user


def snapshot() -> tuple:
    """Everything the workspace endpoints could change."""
    return (
        sorted(Membership.objects.values_list("workspace__slug", "user__username", "role")),
        sorted(Workspace.objects.values_list("slug", "name")),
        sorted(Invitation.objects.values_list("email", "role")),
        VideoTask.objects.count(),
        AuditEntry.objects.count(),
    )


# ---- Who sees what on the settings page ------------------------------------------------


def test_a_viewer_sees_the_people_and_no_controls(team, owner, teammate, viewer):
    response = signed_in_as(viewer).get(SETTINGS)
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("owner", "teammate", "viewer"):
        assert f">{name}" in page
    assert "Owner" in page and "Member" in page and "Viewer" in page
    for control in ("/role/", "/remove/", "/invitations/", "/rename/", "/delete/", "/audit/", "/step-down/"):
        assert control not in page, control
    assert "/w/team/leave/" in page


def test_a_manager_gets_controls_for_people_below_owner_only(team, owner, teammate, manager):
    page = signed_in_as(manager).get(SETTINGS).content.decode()
    assert 'action="/w/team/invitations/"' in page
    assert "/w/team/audit/" in page
    assert f"/w/team/people/{membership(teammate).pk}/role/" in page
    assert f"/w/team/people/{membership(teammate).pk}/remove/" in page
    assert f"/w/team/people/{membership(owner).pk}/" not in page
    assert '<option value="owner"' not in page
    assert "/w/team/rename/" not in page and "/w/team/delete/" not in page


def test_an_owner_gets_rename_delete_and_hand_over(signed_in, team, teammate):
    page = signed_in.get(SETTINGS).content.decode()
    assert "/w/team/rename/" in page
    assert "/w/team/delete/" in page
    assert "Make owner" in page
    assert "only owner" in page  # and so no step-down button
    assert "/w/team/step-down/" not in page


def test_a_signed_out_visitor_is_sent_to_sign_in(client, team):
    response = client.get(SETTINGS)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# ---- 404 outside, 403 inside ------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    name: str
    method: str
    url: str  # {person}: the teammate's membership; {invitation}: a pending invitation
    action: str
    data: dict = field(default_factory=dict)


INVITE_DATA = {"email": "x@example.com", "role": "member"}
ACTS = [
    Act("settings", "get", "/w/team/settings/", Action.VIEW),
    Act("audit", "get", "/w/team/audit/", Action.READ_AUDIT),
    Act(
        "invite",
        "post",
        "/w/team/invitations/",
        Action.MANAGE_PEOPLE,
        {"email": "x@example.com", "role": "member"},
    ),
    Act("withdraw", "post", "/w/team/invitations/{invitation}/withdraw/", Action.MANAGE_PEOPLE),
    Act("change-role", "post", "/w/team/people/{person}/role/", Action.MANAGE_PEOPLE, {"role": "viewer"}),
    Act("make-owner", "post", "/w/team/people/{person}/role/", Action.TRANSFER, {"role": "owner"}),
    Act("remove", "post", "/w/team/people/{person}/remove/", Action.MANAGE_PEOPLE),
    Act("leave", "post", "/w/team/leave/", Action.VIEW),
    Act("step-down", "post", "/w/team/step-down/", Action.TRANSFER),
    Act("rename", "post", "/w/team/rename/", Action.RENAME, {"name": "Crew", "slug": "crew"}),
    Act("delete-get", "get", "/w/team/delete/", Action.DELETE_WORKSPACE),
    Act("delete-post", "post", "/w/team/delete/", Action.DELETE_WORKSPACE, {"confirm": "team"}),
]
ROLES = ["owner", "manager", "member", "viewer", "outsider"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("act", ACTS, ids=[act.name for act in ACTS])
def test_role_table(act: Act, role: str, team, owner, teammate, outsider, mailoutbox):
    """One cell: allowed is neither 403 nor 404 (and the change happens); not allowed is a
    403 inside the workspace, a 404 outside it, and nothing changes, no email leaves."""
    make_task(owner, workspace=team)
    invitation, _ = Invitation.issue(team, "pending@example.com", "member", owner)
    user = outsider
    if role != "outsider":
        user = get_user_model().objects.create_user(f"a-{role}")
        join(team, user, role)
    client = signed_in_as(user)  # signing in makes their personal workspace: before the snapshot
    url = act.url.format(person=membership(teammate).pk, invitation=invitation.pk)
    before = snapshot()

    response = getattr(client, act.method)(url, act.data)

    if role != "outsider" and allows(role, act.action):
        assert response.status_code not in (403, 404)
        if act.method == "post":
            assert snapshot() != before
        return
    assert response.status_code == (404 if role == "outsider" else 403)
    assert snapshot() == before
    assert mailoutbox == []


# ---- Roles -----------------------------------------------------------------------------


def test_a_manager_changes_a_role_below_owner(team, teammate, manager):
    client = signed_in_as(manager)
    response = client.post(f"/w/team/people/{membership(teammate).pk}/role/", {"role": "manager"})
    assert response["Location"] == SETTINGS
    assert role_of(teammate) == "manager"
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.ROLE_CHANGED)
    assert (entry.actor_name, entry.target, entry.detail) == ("manager", "teammate", "member → manager")
    assert "teammate is now a manager." in page_messages(client)


def test_a_manager_cannot_make_an_owner_nor_demote_or_remove_one(team, owner, teammate, manager):
    client = signed_in_as(manager)
    before = snapshot()
    assert (
        client.post(f"/w/team/people/{membership(teammate).pk}/role/", {"role": "owner"}).status_code == 403
    )
    assert client.post(f"/w/team/people/{membership(owner).pk}/role/", {"role": "viewer"}).status_code == 403
    assert client.post(f"/w/team/people/{membership(owner).pk}/remove/").status_code == 403
    assert snapshot() == before


def test_a_made_up_role_changes_nothing(signed_in, team, teammate):
    before = snapshot()
    signed_in.post(f"/w/team/people/{membership(teammate).pk}/role/", {"role": "emperor"})
    assert snapshot() == before


def test_someone_in_another_workspace_is_a_404(signed_in, team, outsider):
    elsewhere = Membership.objects.get(workspace=Workspace.objects.personal_for(outsider), user=outsider)
    assert signed_in.post(f"/w/team/people/{elsewhere.pk}/role/", {"role": "viewer"}).status_code == 404
    assert signed_in.post(f"/w/team/people/{elsewhere.pk}/remove/").status_code == 404
    assert role_of(outsider, elsewhere.workspace.slug) == "owner"


def test_an_owner_hands_over_then_steps_down(signed_in, team, owner, teammate):
    made = signed_in.post(f"/w/team/people/{membership(teammate).pk}/role/", {"role": "owner"})
    assert made["Location"] == SETTINGS
    assert role_of(teammate) == "owner"
    assert "/w/team/step-down/" in signed_in.get(SETTINGS).content.decode()

    assert signed_in.post("/w/team/step-down/")["Location"] == SETTINGS
    assert role_of(owner) == "manager"
    details = list(
        AuditEntry.objects.filter(kind=AuditEntry.Kind.ROLE_CHANGED)
        .order_by("pk")
        .values_list("target", "detail")
    )
    assert details == [("teammate", "member → owner"), ("owner", "owner → manager")]


def test_the_last_owner_cannot_step_down_leave_or_be_demoted(signed_in, team, owner):
    before = snapshot()
    signed_in.post("/w/team/step-down/")
    assert role_of(owner) == "owner"
    assert any("always has an owner" in text for text in page_messages(signed_in))

    left = signed_in.post("/w/team/leave/")
    assert left["Location"] == SETTINGS
    assert role_of(owner) == "owner"
    assert any("always has an owner" in text for text in page_messages(signed_in))

    signed_in.post(f"/w/team/people/{membership(owner).pk}/role/", {"role": "member"})
    signed_in.post(f"/w/team/people/{membership(owner).pk}/remove/")
    assert role_of(owner) == "owner"
    assert snapshot() == before


def test_one_of_two_owners_may_remove_the_other(signed_in, team, owner, teammate):
    join(team, teammate, "owner")
    signed_in.post(f"/w/team/people/{membership(teammate).pk}/remove/")
    assert role_of(teammate) is None
    # Now the last one.
    signed_in.post("/w/team/leave/")
    assert role_of(owner) == "owner"


# ---- Removing and leaving ---------------------------------------------------------------


def test_removing_someone_keeps_the_tasks_they_added(team, owner, teammate, manager):
    task = make_task(teammate, task_id="by_teammate", workspace=team)
    client = signed_in_as(manager)
    response = client.post(f"/w/team/people/{membership(teammate).pk}/remove/")
    assert response["Location"] == SETTINGS
    assert role_of(teammate) is None
    task.refresh_from_db()
    assert (task.workspace_id, task.owner_id) == (team.pk, teammate.pk)
    assert signed_in_as(teammate).get("/w/team/").status_code == 404
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.MEMBER_REMOVED)
    assert (entry.actor_name, entry.target, entry.detail) == ("manager", "teammate", "was member")


def test_a_member_leaves_and_lands_on_another_workspace(team, teammate):
    make_task(teammate, task_id="mine", workspace=team)
    client = signed_in_as(teammate)
    client.get("/w/team/")  # the team's board is their current workspace
    left = client.post("/w/team/leave/")
    assert left["Location"] == "/"
    assert role_of(teammate) is None
    assert VideoTask.objects.filter(task_id="mine", workspace=team).exists()
    home = client.get("/")
    assert home.status_code == 200
    assert home.context["workspace"] == Workspace.objects.personal_for(teammate)
    assert client.get(SETTINGS).status_code == 404
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.LEFT)
    assert (entry.actor_name, entry.target) == ("teammate", "teammate")


# ---- Creating, renaming, deleting ---------------------------------------------------------


def test_anyone_signed_in_creates_a_workspace_and_owns_it(team, outsider):
    client = signed_in_as(outsider)
    assert client.get("/workspaces/new/").status_code == 200
    created = client.post("/workspaces/new/", {"name": "Team", "slug": ""})
    # "team" is taken: the slug made from the name gets a suffix.
    assert created["Location"] == "/w/team-2/"
    workspace = Workspace.objects.get(slug="team-2")
    assert (workspace.name, role_of(outsider, "team-2"), workspace.is_personal) == ("Team", "owner", False)
    assert client.get("/").context["workspace"] == workspace
    assert AuditEntry.objects.filter(workspace=workspace, kind=AuditEntry.Kind.JOINED).exists()

    chosen = client.post("/workspaces/new/", {"name": "Film crew", "slug": "crew-1"})
    assert chosen["Location"] == "/w/crew-1/"
    taken = client.post("/workspaces/new/", {"name": "Another", "slug": "team"})
    assert taken.status_code == 400
    assert "Another workspace has this address" in taken.content.decode()
    assert client.post("/workspaces/new/", {"name": "   ", "slug": ""}).status_code == 400
    assert Workspace.objects.filter(name="Another").count() == 0


def test_renaming_changes_the_slug_and_the_old_one_is_a_404(signed_in, team, teammate):
    response = signed_in.post("/w/team/rename/", {"name": "Crew", "slug": "crew"})
    assert response["Location"] == "/w/crew/settings/"
    team.refresh_from_db()
    assert (team.name, team.slug) == ("Crew", "crew")
    assert signed_in.get("/w/team/").status_code == 404
    assert signed_in.get(SETTINGS).status_code == 404
    assert signed_in_as(teammate).get("/w/crew/").status_code == 200
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.RENAMED)
    assert (entry.target, entry.detail) == ("Crew", "Team (team) → Crew (crew)")


def test_renaming_to_a_taken_slug_changes_nothing(signed_in, team, outsider):
    other = Workspace.objects.personal_for(outsider)
    response = signed_in.post("/w/team/rename/", {"name": "Crew", "slug": other.slug})
    assert response.status_code == 400
    assert "Another workspace has this address" in response.content.decode()
    team.refresh_from_db()
    assert (team.name, team.slug) == ("Team", "team")
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.RENAMED).exists()


def test_deleting_asks_for_the_slug_then_removes_the_workspace_with_its_tasks(
    signed_in, team, owner, teammate
):
    connection = ProviderConnection(workspace=team, name="Gateway", base_url="https://gateway.example.com/v1")
    connection.set_api_key("sk-team-key-123456")
    connection.save()
    make_task(owner, task_id="team_task", workspace=team, connection=connection)
    mine = make_task(owner, task_id="personal_task")
    signed_in.get("/w/team/")  # the team is the owner's current workspace

    confirm = signed_in.get("/w/team/delete/")
    assert confirm.status_code == 200
    assert "1 task" in confirm.content.decode()
    wrong = signed_in.post("/w/team/delete/", {"confirm": "Team"})
    assert wrong.status_code == 400
    assert Workspace.objects.filter(slug="team").exists()

    deleted = signed_in.post("/w/team/delete/", {"confirm": "team"})
    assert deleted["Location"] == "/"
    assert not Workspace.objects.filter(slug="team").exists()
    assert not VideoTask.objects.filter(task_id="team_task").exists()
    assert not ProviderConnection.objects.filter(pk=connection.pk).exists()
    assert VideoTask.objects.filter(pk=mine.pk).exists()
    assert role_of(teammate) is None
    home = signed_in.get("/")
    assert home.status_code == 200
    assert home.context["workspace"] == Workspace.objects.personal_for(owner)
    assert signed_in.get("/w/team/").status_code == 404


def test_a_personal_workspace_cannot_be_deleted(signed_in, owner):
    personal = Workspace.objects.personal_for(owner)
    page = signed_in.get(f"/w/{personal.slug}/delete/")
    assert "cannot be deleted" in page.content.decode()
    assert signed_in.post(f"/w/{personal.slug}/delete/", {"confirm": personal.slug}).status_code == 403
    assert Workspace.objects.filter(pk=personal.pk).exists()


def test_the_forms_point_assistive_technology_at_text_that_exists(signed_in, team):
    from tests.test_accessibility import dangling, references

    answers = {
        "settings": signed_in.get(SETTINGS),
        "invite with errors": signed_in.post(
            "/w/team/invitations/", {"email": "not-an-address", "role": "member"}
        ),
        "rename with errors": signed_in.post("/w/team/rename/", {"name": "Team", "slug": "no spaces"}),
        "new": signed_in.get("/workspaces/new/"),
        "new with errors": signed_in.post("/workspaces/new/", {"name": "", "slug": "no spaces"}),
        "delete with errors": signed_in.post("/w/team/delete/", {"confirm": "wrong"}),
    }
    for name, response in answers.items():
        html = response.content.decode()
        assert dangling(html) == [], name
        if "errors" in name:
            assert response.status_code == 400, name
            assert any(ref.endswith("_error") for _, ref in references(html)), name
