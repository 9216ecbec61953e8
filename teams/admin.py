"""The admin for teams: workspaces with their people, provider connections (keys masked,
never shown, replaced through a write-only field), invitations and the audit trail.

Every changelist reads its related rows with the page (list_select_related, annotations),
so its query count does not grow with the rows shown (tests/test_teams_admin.py).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

from teams.connection_forms import clean_base_url_text, clean_key_text
from teams.models import AuditEntry, Invitation, Membership, ProviderConnection, Workspace
from teams.roles import Role


def _count_of(model: Any, field: str) -> Coalesce:
    """A correlated COUNT of `model` rows pointing at the outer row through `field`: one
    subquery per shown row over its index, where two joined COUNTs would multiply the rows
    (members times tasks) before counting them."""
    counted = (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        # A workspace always has an owner: someone must be able to rename, delete or hand it
        # over (and to manage its people) once the admin's edit is saved.
        owners = 0
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            if form.cleaned_data.get("role") == Role.OWNER:
                owners += 1
        if owners == 0 and (self.instance.pk is None or any(form.has_changed() for form in self.forms)):
            raise ValidationError("A workspace needs at least one owner.")


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    fields = ("user", "role", "created_at", "last_used_at")
    readonly_fields = ("created_at", "last_used_at")
    raw_id_fields = ("user",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("user")


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "personal_of", "created_at", "member_count", "task_count")
    list_select_related = ("personal_of",)
    search_fields = ("name", "slug")
    raw_id_fields = ("personal_of",)
    # What the live refresh compares (Workspace.live_token): shown to explain a board that
    # does or does not refresh, never edited by hand.
    readonly_fields = ("created_at", "board_version", "roster_version", "board_changed_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "personal_of", "created_at")}),
        ("Live refresh", {"fields": ("board_version", "roster_version", "board_changed_at")}),
    )
    inlines = (MembershipInline,)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workspace]:
        from videos.models import VideoTask

        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=_count_of(Membership, "workspace"),
                task_count=_count_of(VideoTask, "workspace"),
            )
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is not Membership:
            return
        # People added, removed or given another role here go on the workspace's trail, as
        # they do from its page: managers read who changed what, wherever it was done.
        workspace, actor, kind = form.instance, request.user, AuditEntry.Kind
        for membership in formset.new_objects:
            role = membership.get_role_display().lower()
            AuditEntry.record(
                workspace, actor, kind.JOINED, str(membership.user), f"Added in the admin as {role}"
            )
        for membership, fields in formset.changed_objects:
            if "role" in fields:
                role = membership.get_role_display().lower()
                AuditEntry.record(
                    workspace, actor, kind.ROLE_CHANGED, str(membership.user), f"In the admin: {role}"
                )
        for membership in formset.deleted_objects:
            AuditEntry.record(workspace, actor, kind.MEMBER_REMOVED, str(membership.user), "In the admin")

    @admin.display(description="members", ordering="member_count")
    def member_count(self, workspace: Workspace) -> int:
        return workspace.member_count

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, workspace: Workspace) -> int:
        return workspace.task_count


class ProviderConnectionForm(forms.ModelForm):
    # Write-only: the stored key never comes back to the page (not even encrypted), and a
    # form shown again after an error does not echo what was typed.
    new_key = forms.CharField(
        label="New key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Leave empty to keep the stored key. Stored encrypted; only its last four characters are shown."
        ),
    )

    class Meta:
        model = ProviderConnection
        fields = ("workspace", "name", "base_url", "max_rps", "is_default")

    # The connection pages' own rules (one place): the admin is an operator's, so the
    # address check (public hosts only) is theirs to skip.
    def clean_base_url(self) -> str:
        return clean_base_url_text(self.cleaned_data["base_url"])

    def clean_new_key(self) -> str:
        return clean_key_text(self.cleaned_data["new_key"])

    def clean_max_rps(self) -> float:
        value = self.cleaned_data["max_rps"]
        if value < 0:
            raise ValidationError("0 for no ceiling, or a positive number of requests per second.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The workspace is read-only once the connection exists, which leaves it out of the
        # form and so out of Django's own check of the per-workspace constraints: check them
        # here, or a clash would be a database error instead of a message.
        workspace_id = cleaned["workspace"].pk if cleaned.get("workspace") else self.instance.workspace_id
        if workspace_id is None:
            return cleaned
        others = ProviderConnection.objects.filter(workspace_id=workspace_id).exclude(pk=self.instance.pk)
        if cleaned.get("name") and others.filter(name=cleaned["name"]).exists():
            self.add_error("name", "This workspace already has a connection by that name.")
        if cleaned.get("is_default") and others.filter(is_default=True).exists():
            self.add_error("is_default", "This workspace already has a default connection: unset it first.")
        return cleaned


def _state_of(connection: ProviderConnection) -> Any:
    try:
        return connection.state
    except ObjectDoesNotExist:  # never polled yet: no state row
        return None


@admin.register(ProviderConnection)
class ProviderConnectionAdmin(admin.ModelAdmin):
    form = ProviderConnectionForm
    list_display = ("name", "workspace", "base_url", "masked_key", "max_rps", "is_default", "polling")
    list_filter = ("workspace", "is_default")
    list_select_related = ("workspace", "state")
    search_fields = ("name", "base_url", "workspace__name", "workspace__slug")
    autocomplete_fields = ("workspace",)
    readonly_fields = ("masked_key", "polling", "created_by", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("workspace", "name", "base_url", "max_rps", "is_default")}),
        ("Key", {"fields": ("masked_key", "new_key")}),
        ("Polling", {"fields": ("polling", "created_by", "created_at", "updated_at")}),
    )
    actions = ("resume_polling",)

    def get_readonly_fields(self, request: HttpRequest, obj: ProviderConnection | None = None) -> tuple:
        # A connection stays in its workspace: moved, its tasks would be polled with
        # another team's key.
        if obj is not None:
            return (*self.readonly_fields, "workspace")
        return self.readonly_fields

    @admin.display(description="key")
    def masked_key(self, connection: ProviderConnection) -> str:
        return connection.masked_key

    @admin.display(description="polling")
    def polling(self, connection: ProviderConnection) -> str:
        state = _state_of(connection)
        if state is None:
            return "not polled yet"
        if state.blocked_reason:
            return f"Blocked: {state.blocked_reason}"
        if state.is_paused(timezone.now()):
            return f"Paused until {timezone.localtime(state.paused_until):%Y-%m-%d %H:%M:%S}"
        if state.paused_until is not None:
            return "Pause over, probing"
        return "Polling"

    def save_model(self, request: HttpRequest, obj: ProviderConnection, form: Any, change: bool) -> None:
        new_key = form.cleaned_data.get("new_key", "")
        if new_key:
            obj.set_api_key(new_key)
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        changed = [name for name in form.changed_data if name != "new_key"]
        detail = ", ".join(changed + (["key"] if new_key else []))
        if change and not detail:
            return
        AuditEntry.record(
            obj.workspace,
            request.user,
            AuditEntry.Kind.CONNECTION_CHANGED if change else AuditEntry.Kind.CONNECTION_ADDED,
            obj.name,
            f"In the admin: {detail}" if change else "In the admin",
        )

    def delete_model(self, request: HttpRequest, obj: ProviderConnection) -> None:
        workspace, name = obj.workspace, obj.name
        super().delete_model(request, obj)
        AuditEntry.record(workspace, request.user, AuditEntry.Kind.CONNECTION_REMOVED, name, "In the admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        removed = [(c.workspace, c.name) for c in queryset.select_related("workspace")]
        super().delete_queryset(request, queryset)
        for workspace, name in removed:
            AuditEntry.record(
                workspace, request.user, AuditEntry.Kind.CONNECTION_REMOVED, name, "In the admin"
            )

    @admin.action(description="Resume polling (clear pause and block)")
    def resume_polling(self, request: HttpRequest, queryset: QuerySet[ProviderConnection]) -> None:
        resumed = 0
        for connection in queryset.select_related("state"):
            state = _state_of(connection)
            if state is not None:
                state.resume()
                resumed += 1
        self.message_user(request, f"{resumed} connection(s) resumed.", messages.SUCCESS)


class InvitationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "Pending"), ("accepted", "Accepted"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> QuerySet[Invitation]:
        now = timezone.now()
        if self.value() == "pending":
            return queryset.pending(now)
        if self.value() == "accepted":
            return queryset.filter(accepted_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(accepted_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "workspace",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "state",
    )
    list_filter = (InvitationStateFilter, "role", "workspace")
    list_select_related = ("workspace", "invited_by")
    search_fields = ("email", "workspace__name", "workspace__slug")
    date_hierarchy = "created_at"
    # The token's hash stays out of every form and list: it is all a link is checked
    # against. Role and expiry may be changed (an earlier expiry withdraws the link);
    # deleting withdraws it too.
    exclude = ("token_hash",)
    readonly_fields = ("workspace", "email", "invited_by", "created_at", "accepted_at", "accepted_by")
    fields = (
        "workspace",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An invitation's link is made once and sent by email (teams views); the admin
        # could neither send nor show it.
        return False

    @admin.display(description="state")
    def state(self, invitation: Invitation) -> str:
        if invitation.accepted_at is not None:
            return "accepted"
        return "pending" if invitation.expires_at > timezone.now() else "expired"


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The trail as it was written: nobody adds, edits or removes entries here."""

    list_display = ("at", "workspace", "actor_name", "kind", "target", "detail")
    list_filter = ("kind", "workspace")
    list_select_related = ("workspace",)
    search_fields = ("actor_name", "target")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
