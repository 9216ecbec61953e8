from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model

from tests.fake_provider import PROVIDER_KEY, FakeProvider


@pytest.fixture(autouse=True, scope="session")
def _demo_password_file(tmp_path_factory) -> None:
    """seed_demo keeps the demo password in a file beside the project: tests keep theirs in
    a temporary directory instead (sandbox.management.commands.seed_demo.password_file)."""
    from django.conf import settings

    settings.DEMO_PASSWORD_FILE = str(tmp_path_factory.mktemp("demo") / ".demo-password")


@pytest.fixture
def provider(settings) -> Iterator[FakeProvider]:
    """The fake provider on loopback. Its host:port is allowed (VIDEO_FETCH_ALLOW_HOSTS) as
    an operator allows a self-hosted gateway, so a workspace connection may point at it."""
    fake = FakeProvider().start()
    port = fake.server.server_address[1]
    settings.VIDEO_FETCH_ALLOW_HOSTS = [*settings.VIDEO_FETCH_ALLOW_HOSTS, f"127.0.0.1:{port}"]
    yield fake
    fake.stop()


@pytest.fixture
def configured(settings, provider: FakeProvider) -> FakeProvider:
    """The fake provider as the deployment's configured one, with PROVIDER_KEY."""
    settings.VIDEO_API_BASE_URL = provider.base_url
    settings.VIDEO_API_KEY = PROVIDER_KEY
    return provider


@pytest.fixture
def signed_in(client, owner):
    """Django's test client, signed in as the owner persona."""
    client.force_login(owner)
    return client


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", password="owner-password-1")


@pytest.fixture
def teammate(db):
    return get_user_model().objects.create_user("teammate", password="teammate-password-1")


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("outsider", password="outsider-password-1")


@pytest.fixture
def team(owner, teammate):
    """A shared workspace: the owner persona owns it, the teammate is a member; the
    outsider is not in it. (Everyone also has a personal workspace of their own.)"""
    from teams.models import Membership, Role, Workspace

    workspace = Workspace.objects.create(name="Team", slug="team")
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    Membership.objects.create(workspace=workspace, user=teammate, role=Role.MEMBER)
    return workspace
