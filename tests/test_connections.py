"""A workspace's provider connections, managed in the browser: who may see and change them,
what a base URL may be, how a key is kept write-only, defaults, blocks and removal."""

from __future__ import annotations

import re

import pytest

from teams import connection_forms
from teams.models import AuditEntry, ProviderConnection, Role, Workspace
from tests.pages import join, make_task
from videos.models import ProviderState, Submission

KEY = "sk-conn-test-key-ZQ81xv"
PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def public_dns(monkeypatch):
    """Names resolve to a public address (the test machine may have no DNS at all)."""
    answers: dict[str, list[str]] = {}
    monkeypatch.setattr(connection_forms, "resolve", lambda host, port: answers.get(host, [PUBLIC_IP]))
    return answers


def connect(workspace: Workspace, name: str = "Gateway", key: str = KEY, **fields) -> ProviderConnection:
    connection = ProviderConnection(
        workspace=workspace, name=name, base_url=fields.pop("base_url", "https://gw.example.com/v1"), **fields
    )
    connection.set_api_key(key)
    connection.save()
    return connection


def form(**fields) -> dict[str, str]:
    data = {"name": "Gateway", "base_url": "https://gw.example.com/v1", "api_key": KEY, "max_rps": "0"}
    data.update(fields)
    return {name: value for name, value in data.items() if value is not None}


def url(workspace: Workspace, action: str = "", pk: int | None = None) -> str:
    base = f"/w/{workspace.slug}/connections/"
    if action == "add":
        return base + "add/"
    if pk is not None:
        return base + f"{pk}/" + (f"{action}/" if action else "")
    return base


# --- Who may see and do what -----------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_every_member_sees_the_list_without_the_controls(client, team, teammate, role):
    join(team, teammate, role)
    connection = connect(team, max_rps=2.5, is_default=True)
    client.force_login(teammate)
    html = client.get(url(team)).content.decode()
    assert "Gateway" in html and "https://gw.example.com/v1" in html
    assert f"…{KEY[-4:]}" in html
    assert "2.5/s" in html and "default" in html
    assert url(team, "test", connection.pk) not in html
    assert url(team, "add") not in html
    assert KEY not in html


def test_managers_see_the_controls(client, team, teammate):
    join(team, teammate, Role.MANAGER)
    connection = connect(team)
    client.force_login(teammate)
    html = client.get(url(team)).content.decode()
    for action in ("test", "remove"):
        assert url(team, action, connection.pk) in html
    assert url(team, "add") in html


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("get", "add"),
        ("post", "add"),
        ("get", ""),
        ("post", ""),
        ("post", "test"),
        ("get", "remove"),
        ("post", "remove"),
    ],
)
def test_members_and_viewers_may_not_manage(client, team, teammate, provider, settings, method, action):
    settings.VIDEO_FETCH_ALLOW_HOSTS = [provider.base_url.split("/")[2]]
    connection = connect(team, base_url=provider.base_url)
    client.force_login(teammate)
    for role in (Role.MEMBER, Role.VIEWER):
        join(team, teammate, role)
        target = url(team, "add") if action == "add" else url(team, action, connection.pk)
        data = form(name="Renamed", base_url=provider.base_url) if method == "post" else None
        response = getattr(client, method)(target, data)
        assert response.status_code == 403, (role, target)
    connection.refresh_from_db()
    assert connection.name == "Gateway"
    assert ProviderConnection.objects.count() == 1
    assert provider.requests == []  # no test was run
    assert not AuditEntry.objects.filter(kind__startswith="connection").exists()


@pytest.mark.parametrize("action", ["", "test", "remove"])
def test_outsiders_get_a_404_everywhere(client, team, outsider, action):
    connection = connect(team)
    client.force_login(outsider)
    assert client.get(url(team)).status_code == 404
    assert client.get(url(team, "add")).status_code == 404
    assert client.post(url(team, action, connection.pk)).status_code == 404
    assert ProviderConnection.objects.filter(pk=connection.pk).exists()


@pytest.mark.parametrize(
    ("method", "action"), [("get", ""), ("post", ""), ("post", "test"), ("get", "remove"), ("post", "remove")]
)
def test_another_workspaces_connection_is_a_404(signed_in, team, owner, method, action):
    elsewhere = Workspace.objects.create(name="Elsewhere", slug="elsewhere")
    join(elsewhere, owner, Role.OWNER)  # the owner manages both: still not through this URL
    theirs = connect(elsewhere)
    response = getattr(signed_in, method)(url(team, action, theirs.pk), form(name="Taken over"))
    assert response.status_code == 404
    assert ProviderConnection.objects.get(pk=theirs.pk).name == "Gateway"


def test_the_list_needs_a_signed_in_user(client, team):
    response = client.get(url(team))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- Adding ------------------------------------------------------------------------------


def test_a_manager_adds_a_connection(client, team, teammate, public_dns):
    join(team, teammate, Role.MANAGER)
    client.force_login(teammate)
    response = client.post(url(team, "add"), form(base_url="https://gw.example.com/v1/", max_rps="3"))
    assert response.status_code == 302 and response["Location"] == url(team)
    connection = ProviderConnection.objects.get(workspace=team)
    assert connection.base_url == "https://gw.example.com/v1"  # trailing slash trimmed
    assert connection.api_key() == KEY
    assert KEY not in connection.api_key_encrypted
    assert connection.masked_key == f"…{KEY[-4:]}"
    assert connection.max_rps == 3
    assert connection.created_by == teammate
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.CONNECTION_ADDED)
    assert (entry.workspace, entry.actor, entry.target) == (team, teammate, "Gateway")
    assert KEY not in entry.detail
    page = client.get(url(team)).content.decode()
    assert "Connection Gateway added" in page and KEY not in page


def test_the_add_form_says_the_version_prefix_belongs_in_the_base_url(signed_in, team):
    html = signed_in.get(url(team, "add")).content.decode()
    assert "version prefix" in html
    # A password field no browser fills with the person's own saved sign-in password.
    assert re.search(r'<input type="password" name="api_key" autocomplete="new-password"', html)


def test_a_key_is_required_to_add(signed_in, team, public_dns):
    response = signed_in.post(url(team, "add"), form(api_key=""))
    assert response.status_code == 200
    assert not ProviderConnection.objects.exists()


def test_a_rejected_form_never_renders_the_key_back(signed_in, team, public_dns):
    response = signed_in.post(url(team, "add"), form(base_url="ftp://gw.example.com/v1"))
    html = response.content.decode()
    assert response.status_code == 200 and "https://" in html
    assert KEY not in html
    assert not ProviderConnection.objects.exists()


def test_names_are_unique_in_a_workspace_but_not_across(signed_in, team, owner, public_dns):
    connect(team, name="Gateway")
    response = signed_in.post(url(team, "add"), form(name="gateway"))
    assert "already has a connection with this name" in response.content.decode()
    personal = Workspace.objects.personal_for(owner)
    assert signed_in.post(url(personal, "add"), form(name="Gateway")).status_code == 302


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("ftp://gw.example.com/v1", "https://"),
        ("gw.example.com/v1", "https://"),
        ("https://user:pass@gw.example.com/v1", "user name and password"),
        ("https://gw.example.com/v1?key=1", "query"),
        ("https://gw.example.com/v1#top", "fragment"),
        ("https:///v1", "host"),
        ("https://gw.example.com/v1/../admin", ".."),
        ("https://gw.example.com/v 1", "spaces"),
        ("https://gw.example.com:99999/v1", "not a valid URL"),
    ],
)
def test_base_urls_that_are_refused(signed_in, team, public_dns, base_url, problem):
    response = signed_in.post(url(team, "add"), form(base_url=base_url))
    assert response.status_code == 200
    assert problem in response.content.decode()
    assert not ProviderConnection.objects.exists()


@pytest.mark.parametrize("max_rps", ["-1", "10001", "nan", "inf", "lots"])
def test_the_request_ceiling_is_bounded(signed_in, team, public_dns, max_rps):
    assert signed_in.post(url(team, "add"), form(max_rps=max_rps)).status_code == 200
    assert not ProviderConnection.objects.exists()


def test_a_key_with_a_line_break_is_refused_without_being_echoed(signed_in, team, public_dns):
    html = signed_in.post(url(team, "add"), form(api_key=KEY + "\r\nX-Evil: 1")).content.decode()
    assert "line breaks" in html and KEY not in html
    assert not ProviderConnection.objects.exists()


# --- Base URL safety: a manager is not an operator ------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://[::1]/v1", "loopback"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://10.1.2.3/v1", "private"),
        ("http://2130706433/v1", "loopback"),  # 127.0.0.1 in another spelling
        ("http://224.0.0.1/v1", "multicast"),
    ],
)
def test_addresses_off_the_internet_are_refused(signed_in, team, public_dns, base_url, reason):
    html = signed_in.post(url(team, "add"), form(base_url=base_url)).content.decode()
    assert reason in html and "VIDEO_FETCH_ALLOW_HOSTS" in html
    assert not ProviderConnection.objects.exists()


def test_a_name_that_resolves_to_a_private_address_is_refused(signed_in, team, public_dns):
    public_dns["intranet.example.com"] = [PUBLIC_IP, "192.168.1.10"]  # one bad answer is enough
    html = signed_in.post(url(team, "add"), form(base_url="https://intranet.example.com/v1")).content.decode()
    assert "private" in html
    assert not ProviderConnection.objects.exists()


def test_a_name_that_does_not_resolve_is_refused(signed_in, team, monkeypatch):
    def no_such_host(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(connection_forms, "resolve", no_such_host)
    html = signed_in.post(url(team, "add"), form(base_url="https://nowhere.example.com/v1")).content.decode()
    assert "Could not resolve nowhere.example.com" in html
    assert not ProviderConnection.objects.exists()


def test_an_operator_allows_a_host_and_port(signed_in, team, settings, public_dns):
    settings.VIDEO_FETCH_ALLOW_HOSTS = ["127.0.0.1:8000", "gateway.internal"]
    assert signed_in.post(url(team, "add"), form(base_url="http://127.0.0.1:8000/v1")).status_code == 302
    # The allowance is for that port only...
    html = signed_in.post(url(team, "add"), form(name="Other port", base_url="http://127.0.0.1:8001/v1"))
    assert "loopback" in html.content.decode()
    # ...and a host listed without a port is allowed on any.
    public_dns["gateway.internal"] = ["10.0.0.7"]
    response = signed_in.post(
        url(team, "add"), form(name="Internal", base_url="http://gateway.internal:9/v1")
    )
    assert response.status_code == 302
    assert set(ProviderConnection.objects.values_list("name", flat=True)) == {"Gateway", "Internal"}


# --- Editing -----------------------------------------------------------------------------


def test_editing_without_a_key_keeps_the_key_and_shows_only_its_last_four(signed_in, team, public_dns):
    connection = connect(team)
    stored = connection.api_key_encrypted
    page = signed_in.get(url(team, "", connection.pk)).content.decode()
    assert f"…{KEY[-4:]}" in page and KEY not in page and KEY[:-4] not in page
    response = signed_in.post(url(team, "", connection.pk), form(name="Renamed", api_key=""))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed"
    assert connection.api_key_encrypted == stored
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.CONNECTION_CHANGED)
    assert entry.detail == "name" and entry.target == "Renamed"


def test_a_new_key_replaces_the_old_and_the_trail_says_so_without_it(signed_in, team, public_dns):
    connection = connect(team)
    new_key = "sk-brand-new-key-7781Qa"
    signed_in.post(url(team, "", connection.pk), form(api_key=new_key, base_url="https://gw2.example.com/v1"))
    connection.refresh_from_db()
    assert connection.api_key() == new_key
    assert connection.masked_key == "…81Qa"
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.CONNECTION_CHANGED)
    assert entry.detail == "base URL, key replaced"
    assert new_key not in str(AuditEntry.objects.values_list())


def test_saving_nothing_changed_records_nothing_and_keeps_the_block(signed_in, team, public_dns):
    connection = connect(team)
    state = blocked(connection)
    # The same base URL with a trailing slash is the same base URL.
    signed_in.post(url(team, "", connection.pk), form(api_key="", base_url="https://gw.example.com/v1/"))
    assert not AuditEntry.objects.exists()
    state.refresh_from_db()
    assert state.blocked_reason


def test_a_new_default_unsets_the_previous_one(signed_in, team, public_dns):
    first = connect(team, name="First", is_default=True)
    second = connect(team, name="Second")
    response = signed_in.post(url(team, "", second.pk), form(name="Second", api_key="", is_default="on"))
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)
    assert team.default_connection() == second
    # And adding a new default does the same.
    signed_in.post(url(team, "add"), form(name="Third", is_default="on"))
    assert list(team.connections.filter(is_default=True).values_list("name", flat=True)) == ["Third"]


def blocked(connection: ProviderConnection) -> ProviderState:
    state = ProviderState.for_connection(connection, connection.base_url)
    state.block("The provider refused the API key (HTTP 401).", connection.key_fingerprint())
    return state


@pytest.mark.parametrize(
    "change",
    # Another server takes the key typed again (tests/test_review_teams.py); another path
    # of the same server is a new address too.
    [{"api_key": "sk-replacement-key-0042"}, {"base_url": "https://gw.example.com/v2", "api_key": ""}],
)
def test_a_new_key_or_address_lifts_the_block(signed_in, team, public_dns, change):
    connection = connect(team)
    state = blocked(connection)
    html = signed_in.get(url(team)).content.decode()
    assert "Blocked: The provider refused the API key (HTTP 401)." in html
    signed_in.post(url(team, "", connection.pk), form(**change))
    state.refresh_from_db()
    assert state.blocked_reason == "" and state.paused_until is None
    assert "Blocked" not in signed_in.get(url(team)).content.decode()


def test_a_rename_keeps_the_block(signed_in, team, public_dns):
    connection = connect(team)
    state = blocked(connection)
    signed_in.post(url(team, "", connection.pk), form(name="Renamed", api_key=""))
    state.refresh_from_db()
    assert state.blocked_reason


def test_the_list_shows_a_pause(signed_in, team):
    from datetime import timedelta

    from django.utils import timezone

    connection = connect(team)
    ProviderState.for_connection(connection, connection.base_url).pause_until(
        timezone.now() + timedelta(minutes=5)
    )
    assert "Paused until" in signed_in.get(url(team)).content.decode()


# --- Removing ----------------------------------------------------------------------------


def test_a_connection_in_use_is_not_removed(signed_in, team, owner):
    connection = connect(team)
    for n in range(2):
        make_task(owner, task_id=f"on-it-{n}", workspace=team, connection=connection)
    page = signed_in.get(url(team, "remove", connection.pk)).content.decode()
    assert "2 tasks use this connection" in page and "Stop tracking those tasks first" in page
    assert 'action="' + url(team, "remove", connection.pk) not in page  # no button to press
    response = signed_in.post(url(team, "remove", connection.pk))
    assert response.status_code == 409
    assert ProviderConnection.objects.filter(pk=connection.pk).exists()
    assert set(team.tasks.values_list("connection", flat=True)) == {connection.pk}  # never moved
    assert not AuditEntry.objects.filter(kind=AuditEntry.Kind.CONNECTION_REMOVED).exists()


def test_a_start_still_waiting_for_its_answer_keeps_the_connection(signed_in, team, owner):
    connection = connect(team)
    Submission.objects.create(
        workspace=team, owner=owner, connection=connection, prompt="a fox", state=Submission.State.UNKNOWN
    )
    assert signed_in.post(url(team, "remove", connection.pk)).status_code == 409
    assert ProviderConnection.objects.filter(pk=connection.pk).exists()


def test_an_unused_connection_is_removed_with_its_finished_starts(signed_in, team, owner):
    connection = connect(team)
    Submission.objects.create(
        workspace=team, owner=owner, connection=connection, prompt="x", state=Submission.State.REJECTED
    )
    ProviderState.for_connection(connection, connection.base_url)
    page = signed_in.get(url(team, "remove", connection.pk)).content.decode()
    assert "Remove Gateway?" in page and "1 earlier video start" in page
    response = signed_in.post(url(team, "remove", connection.pk))
    assert response.status_code == 302 and response["Location"] == url(team)
    assert not ProviderConnection.objects.exists()
    assert not Submission.objects.exists()
    assert not ProviderState.objects.filter(connection__isnull=False).exists()
    entry = AuditEntry.objects.get(kind=AuditEntry.Kind.CONNECTION_REMOVED)
    assert (entry.actor, entry.target) == (owner, "Gateway")


def test_a_save_the_database_turns_down_is_a_message_not_a_crash(signed_in, team, public_dns, monkeypatch):
    """Two managers adding the same name at once: the second one's check passed before the
    first one's insert, and the constraint turns it down."""
    connect(team, name="Gateway")
    monkeypatch.setattr(connection_forms.ConnectionForm, "clean_name", lambda form: form.cleaned_data["name"])
    response = signed_in.post(url(team, "add"), form(name="Gateway"))
    html = response.content.decode()
    assert response.status_code == 200 and "at the same time" in html and KEY not in html
    assert ProviderConnection.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_the_form_points_assistive_technology_at_text_that_exists(signed_in, team, public_dns):
    from tests.test_accessibility import dangling, references

    html = signed_in.get(url(team, "add")).content.decode()
    assert ("aria-describedby", "id_base_url_helptext") in references(html)
    assert dangling(html) == []
    html = signed_in.post(url(team, "add"), form(base_url="ftp://x", max_rps="-1")).content.decode()
    assert ("aria-describedby", "id_base_url_error") in references(html)
    assert dangling(html) == []
