"""Teams: workspaces, the people in them and their roles, invitations, each workspace's
provider connections (keys encrypted at rest) and its audit trail.

`from videos.models import Workspace, Membership, ProviderConnection` works too: the
contract names them there.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from teams.roles import Action, Role, allows

# How long an invitation link works.
INVITATION_LIFETIME = timedelta(days=7)


class WorkspaceQuerySet(models.QuerySet):
    def of(self, user: Any) -> WorkspaceQuerySet:
        """The workspaces `user` belongs to, most recently used first."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(memberships__user=user).order_by(
            F("memberships__last_used_at").desc(nulls_last=True), "name", "pk"
        )

    def personal_for(self, user: Any) -> Workspace:
        """The user's personal workspace (they own it), made on first need.

        Safe against two first requests at once: the unique `personal_of` lets one insert
        win and the other read it.
        """
        found = self.filter(personal_of=user).first()
        if found is not None:
            return found
        try:
            with transaction.atomic():
                workspace = self.create(
                    name=_personal_name(user), slug=unique_slug(user.get_username()), personal_of=user
                )
                Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
        except IntegrityError:
            return self.get(personal_of=user)
        return workspace

    def bump(self, workspace_ids: Any, *, roster: bool = False) -> None:
        """Tell open boards of these workspaces that something they show changed (`roster`:
        a task was added or removed). One short UPDATE per workspace, in pk order, so two
        writers touching the same workspaces never wait on each other in a cycle."""
        now = timezone.now()
        fields: dict[str, Any] = {"board_version": F("board_version") + 1, "board_changed_at": now}
        if roster:
            fields["roster_version"] = F("roster_version") + 1
        for pk in sorted({pk for pk in workspace_ids if pk is not None}):
            self.filter(pk=pk).update(**fields)


def _personal_name(user: Any) -> str:
    return f"{user.get_username()}'s workspace"[:100]


def unique_slug(text: str, *, exclude_pk: int | None = None) -> str:
    """A URL-safe slug from `text` that no other workspace has ("-2", "-3"... when taken)."""
    base = slugify(text)[:50].strip("-") or "workspace"
    taken = set(
        Workspace.objects.filter(slug__startswith=base).exclude(pk=exclude_pk).values_list("slug", flat=True)
    )
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


class Workspace(models.Model):
    """A team: its tasks, people, provider connections and audit trail belong to it."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True, help_text="Used in the board's address: /w/<slug>/")
    # Set on the workspace every user gets for themselves (see personal_for).
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="personal_workspace",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # What the live refresh compares (live_token): bumped on every change a board shows
    # (board_version) and on every task added or removed (roster_version too), so an
    # unchanged refresh is one lookup by primary key whatever the number of tasks.
    board_version = models.PositiveBigIntegerField(default=0, editable=False)
    roster_version = models.PositiveBigIntegerField(default=0, editable=False)
    board_changed_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_personal(self) -> bool:
        return self.personal_of_id is not None

    def live_token(self) -> str:
        return f"{self.roster_version}.{self.board_version}~{self.board_changed_at.isoformat()}"

    def default_connection(self) -> ProviderConnection | None:
        """The connection new tasks use unless another is chosen; None is the deployment's
        own (VIDEO_API_BASE_URL / VIDEO_API_KEY)."""
        return self.connections.filter(is_default=True).first()

    def owners(self) -> models.QuerySet:
        return self.memberships.filter(role=Role.OWNER)

    def rename(self, name: str, slug: str) -> None:
        """A new name and slug: the board's address changes with the slug (the old one is
        then a 404)."""
        self.name, self.slug = name, slug
        Workspace.objects.filter(pk=self.pk).update(name=name, slug=slug)


class LastOwner(Exception):
    """The change would leave a workspace without an owner: nothing was changed."""


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user: Any) -> MembershipQuerySet:
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When the person last opened this workspace's board: "/" opens the latest.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["workspace", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.workspace}"

    def may(self, action: str) -> bool:
        return allows(self.role, action)

    def change_role(self, role: str) -> str:
        """Give this person `role`; returns the role they had. Raises LastOwner when they
        are the workspace's last owner and `role` is not owner."""
        with transaction.atomic():
            old = self._locked_role()
            if old == Role.OWNER and role != Role.OWNER:
                self._ensure_another_owner()
            Membership.objects.filter(pk=self.pk).update(role=role)
        self.role = role
        return old

    def remove(self) -> None:
        """Take this person out of the workspace (the tasks they added stay in it). Raises
        LastOwner when they are its last owner."""
        with transaction.atomic():
            if self._locked_role() == Role.OWNER:
                self._ensure_another_owner()
            Membership.objects.filter(pk=self.pk).delete()

    def _locked_role(self) -> str:
        # The role the row has now, locked until the change commits: the one read before
        # (by a view, a request ago) may be stale, say made owner meanwhile, and judging
        # that one could take away the workspace's last owner.
        current = Membership.objects.select_for_update().filter(pk=self.pk).values_list("role", flat=True)
        return current.first() or self.role

    def _ensure_another_owner(self) -> None:
        # The owners' rows stay locked until the change commits: two owners stepping down
        # at once cannot both see the other one still there (PostgreSQL; SQLite runs one
        # writer at a time anyway).
        owners = Membership.objects.select_for_update().filter(
            workspace_id=self.workspace_id, role=Role.OWNER
        )
        if not any(pk != self.pk for pk in owners.values_list("pk", flat=True)):
            raise LastOwner("A workspace always has an owner: make someone else an owner first.")

    def mark_used(self, now: datetime | None = None) -> None:
        """Remember this as the person's current workspace; at most one write a minute, so
        a board's live refresh does not write on every request."""
        now = now or timezone.now()
        if self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1):
            self.last_used_at = now
            Membership.objects.filter(pk=self.pk).update(last_used_at=now)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class InvitationQuerySet(models.QuerySet):
    def pending(self, now: datetime | None = None) -> InvitationQuerySet:
        return self.filter(accepted_at__isnull=True, expires_at__gt=now or timezone.now())

    def by_token(self, token: str) -> Invitation | None:
        """The invitation a link's token opens, if it is still pending; else None."""
        if not token or len(token) > 200:
            return None
        return self.pending().filter(token_hash=_token_hash(token)).select_related("workspace").first()


class Invitation(models.Model):
    """An invitation by email to join a workspace with a role. Its link carries a random
    token of which only a hash is stored; it works once and expires."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.email} to {self.workspace}"

    @classmethod
    def issue(cls, workspace: Workspace, email: str, role: str, invited_by: Any) -> tuple[Invitation, str]:
        """A new invitation and the token for its link (shown once, in the email only).
        It replaces any earlier unused invitation of the same address to the workspace, so
        only the newest link works."""
        token = secrets.token_urlsafe(32)
        with transaction.atomic():
            cls.objects.filter(workspace=workspace, email__iexact=email, accepted_at__isnull=True).delete()
            invitation = cls.objects.create(
                workspace=workspace,
                email=email,
                role=role,
                invited_by=invited_by,
                token_hash=_token_hash(token),
                expires_at=timezone.now() + INVITATION_LIFETIME,
            )
        return invitation, token

    def withdraw(self) -> bool:
        """Make the link stop working; False when it was used meanwhile (it stays, as a
        record of who joined)."""
        deleted, _ = Invitation.objects.filter(pk=self.pk, accepted_at__isnull=True).delete()
        return bool(deleted)

    def accept(self, user: Any) -> Membership | None:
        """Join the workspace as `user`, once: a second use of the link joins no one.
        Someone already in the workspace keeps their role. Returns the membership, or None
        when the invitation was used or withdrawn meanwhile."""
        now = timezone.now()
        with transaction.atomic():
            used = Invitation.objects.filter(pk=self.pk, accepted_at__isnull=True, expires_at__gt=now).update(
                accepted_at=now, accepted_by=user
            )
            if not used:
                return None
            membership, _ = Membership.objects.get_or_create(
                workspace=self.workspace, user=user, defaults={"role": self.role, "last_used_at": now}
            )
        self.accepted_at, self.accepted_by = now, user
        return membership


def new_hook_token() -> str:
    """The unguessable part of a connection's webhook address (/hooks/<token>/)."""
    return secrets.token_urlsafe(24)


# What a secret generated here starts with: the Standard Webhooks convention, whose
# libraries base64-decode the rest into the HMAC key.
HOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 -- a prefix, not a secret


def generate_hook_secret() -> str:
    """A new signing secret for a gateway that lets you choose one: `whsec_` and 32 random
    bytes in base64 (shown once, then stored encrypted)."""
    return HOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class ProviderConnection(models.Model):
    """A provider a workspace's tasks are polled and started on: a base URL (with its
    version prefix) and a key, stored encrypted (dashboard.encryption) and never shown
    again but for its last four characters. Tasks without a connection use the
    deployment's own, from VIDEO_API_BASE_URL / VIDEO_API_KEY.

    The provider may also push news: verified events posted to /hooks/<hook_token>/ (see
    teams.hooks) make the worker look at a task at once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="connections")
    name = models.CharField(max_length=100)
    base_url = models.CharField(
        "base URL",
        max_length=500,
        help_text="The API root with its version, e.g. https://gateway.example.com/v1",
    )
    api_key_encrypted = models.TextField(blank=True, editable=False)
    key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    max_rps = models.FloatField(
        "request ceiling", default=0, help_text="Requests per second at most; 0 for no ceiling."
    )
    is_default = models.BooleanField(
        "default", default=False, help_text="New tasks of the workspace use it unless another is chosen."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # The inbound webhook: its address's token, the signing secret (encrypted like the key,
    # never shown again) and when a verified event last arrived. The poller reads
    # last_hook_at to slow a connection's steady polling while push is working.
    hook_token = models.CharField(max_length=64, unique=True, default=new_hook_token, editable=False)
    hook_secret_encrypted = models.TextField(blank=True, editable=False)
    last_hook_at = models.DateTimeField("last webhook event", null=True, blank=True, editable=False)

    class Meta:
        ordering = ["workspace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="connection_unique_name"),
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(is_default=True), name="connection_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        # No key, not even encrypted: reprs end up in logs and error reports.
        return f"<ProviderConnection {self.pk} {self.name!r} {self.base_url}>"

    def set_api_key(self, plaintext: str) -> None:
        """Store `plaintext` encrypted with the first key of VIDEO_ENCRYPTION_KEYS (call save())."""
        from dashboard import encryption

        plaintext = plaintext.strip()
        self.api_key_encrypted = encryption.encrypt(plaintext) if plaintext else ""
        self.key_last4 = plaintext[-4:] if len(plaintext) >= 8 else ""

    def api_key(self) -> str:
        """The key in plain text, for the request only. Raises dashboard.encryption.Unreadable
        when no configured key can decrypt it (see the connection's pause, in polling)."""
        from dashboard import encryption

        return encryption.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @property
    def masked_key(self) -> str:
        if not self.api_key_encrypted:
            return "no key"
        return f"…{self.key_last4}" if self.key_last4 else "set (hidden)"

    def key_fingerprint(self) -> str:
        """Changes whenever the stored key changes, without decrypting it: a block for a
        refused (or unreadable) key lifts when someone enters a new one."""
        return hashlib.sha256(self.api_key_encrypted.encode()).hexdigest()[:16]

    def set_hook_secret(self, plaintext: str) -> None:
        """Store the webhook signing secret `plaintext` encrypted (call save()); empty
        clears it, and the webhook then refuses every event."""
        from dashboard import encryption

        plaintext = plaintext.strip()
        self.hook_secret_encrypted = encryption.encrypt(plaintext) if plaintext else ""

    def hook_secret(self) -> str:
        """The signing secret in plain text, for verifying one event only. Raises
        dashboard.encryption.Unreadable when no configured key decrypts it."""
        from dashboard import encryption

        return encryption.decrypt(self.hook_secret_encrypted) if self.hook_secret_encrypted else ""

    @property
    def has_hook_secret(self) -> bool:
        return bool(self.hook_secret_encrypted)

    def regenerate_hook_token(self) -> None:
        """A new webhook address: the old one answers 404 from now on."""
        self.hook_token = new_hook_token()
        ProviderConnection.objects.filter(pk=self.pk).update(hook_token=self.hook_token)

    def mark_hook_received(self, now: datetime | None = None) -> None:
        """Remember that a verified event arrived (one UPDATE of this column only, so it
        never overwrites a manager's edit made meanwhile)."""
        self.last_hook_at = now or timezone.now()
        ProviderConnection.objects.filter(pk=self.pk).update(last_hook_at=self.last_hook_at)


class HookDeliveryQuerySet(models.QuerySet):
    def prune(self, connection: ProviderConnection, before: datetime) -> int:
        """Forget the event IDs `connection` received before `before`: events older than
        the signature's time window are refused as stale anyway."""
        deleted, _ = self.filter(connection=connection, received_at__lt=before).delete()
        return deleted


class HookDelivery(models.Model):
    """An event a connection's webhook acted on, by the provider's event ID: a second
    delivery of the same ID (a retry, or a replay) is answered but not acted on again."""

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="hook_deliveries"
    )
    event_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now)

    objects = HookDeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "hook deliveries"
        constraints = [
            # The replay guard (teams.hook_views): the insert of a seen ID fails.
            models.UniqueConstraint(fields=["connection", "event_id"], name="hookdelivery_unique_event"),
        ]
        indexes = [
            # HookDeliveryQuerySet.prune: a connection's old IDs.
            models.Index(fields=["connection", "received_at"], name="hookdelivery_age"),
        ]

    def __str__(self) -> str:
        return self.event_id


class AuditEntry(models.Model):
    """Who did what in a workspace, and when. Written by the views as things happen; read by
    managers on the workspace's page and in the admin."""

    class Kind(models.TextChoices):
        TRACKED = "tracked", "Tracked a task"
        STARTED = "started", "Started a video"
        REMIXED = "remixed", "Remixed a video"
        DELETED_REMOTE = "deleted_remote", "Deleted a video at the provider"
        STOPPED_TRACKING = "stopped_tracking", "Stopped tracking a task"
        INVITED = "invited", "Invited someone"
        INVITATION_WITHDRAWN = "invitation_withdrawn", "Withdrew an invitation"
        JOINED = "joined", "Joined"
        ROLE_CHANGED = "role_changed", "Changed a role"
        MEMBER_REMOVED = "member_removed", "Removed someone"
        LEFT = "left", "Left the workspace"
        CONNECTION_ADDED = "connection_added", "Added a connection"
        CONNECTION_CHANGED = "connection_changed", "Changed a connection"
        CONNECTION_REMOVED = "connection_removed", "Removed a connection"
        RENAMED = "renamed", "Renamed the workspace"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept as text too, so the trail still says who it was after the account is deleted.
    actor_name = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    target = models.CharField(
        max_length=300, blank=True, help_text="What it was about: a task, a person, a connection."
    )
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The workspace page's trail, newest first.
            models.Index(fields=["workspace", "-at"], name="audit_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_kind_display().lower()} {self.target}".strip()

    @classmethod
    def record(
        cls, workspace: Workspace, actor: Any, kind: str, target: str = "", detail: str = ""
    ) -> AuditEntry:
        return cls.objects.create(
            workspace=workspace,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_name=actor.get_username() if getattr(actor, "pk", None) else str(actor or "")[:150],
            kind=kind,
            target=target[:300],
            detail=detail[:500],
        )


__all__ = [
    "Action",
    "AuditEntry",
    "HookDelivery",
    "Invitation",
    "LastOwner",
    "Membership",
    "ProviderConnection",
    "Role",
    "Workspace",
]
