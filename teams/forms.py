"""Forms of a workspace's pages: creating and renaming it, inviting people, their roles,
and the account a newcomer makes from an invitation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.text import slugify

from teams.models import Workspace, unique_slug
from teams.roles import RANK, Role, may_assign


def assignable_roles(actor_role: str) -> list[tuple[str, str]]:
    """The roles someone with `actor_role` may hand out, highest first."""
    return [
        (role.value, role.label)
        for role in sorted(Role, key=RANK.get, reverse=True)
        if may_assign(actor_role, role)
    ]


class WorkspaceForm(forms.Form):
    """A workspace's name and the slug of its address. Creating one, an empty slug is made
    from the name; renaming, the slug is required."""

    name = forms.CharField(max_length=100)
    slug = forms.SlugField(
        max_length=60,
        required=False,
        help_text="The board's address: /w/<slug>/. Letters, digits, hyphens.",
    )

    def __init__(self, *args: Any, workspace: Workspace | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        if workspace is not None:
            self.fields["slug"].required = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the workspace a name.")
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        name, slug = cleaned.get("name"), cleaned.get("slug")
        if name and not slug and self.workspace is None:
            cleaned["slug"] = unique_slug(name)
        elif slug:
            slug = slugify(slug)
            taken = Workspace.objects.filter(slug=slug)
            if self.workspace is not None:
                taken = taken.exclude(pk=self.workspace.pk)
            if not slug:
                self.add_error("slug", "Use letters, digits or hyphens.")
            elif taken.exists():
                self.add_error("slug", "Another workspace has this address; choose another.")
            cleaned["slug"] = slug
        return cleaned


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=())

    def __init__(self, *args: Any, actor_role: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = assignable_roles(actor_role)
        self.fields["role"].initial = Role.MEMBER

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class DeleteWorkspaceForm(forms.Form):
    confirm = forms.CharField(max_length=60, label="Type the workspace's slug to confirm")

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_confirm(self) -> str:
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.workspace.slug:
            raise forms.ValidationError(f"Type {self.workspace.slug} to delete this workspace.")
        return typed


class SignupForm(UserCreationForm):
    """The account a newcomer makes from an invitation link: Django's own checks of the
    username and of the password (AUTH_PASSWORD_VALIDATORS), and an email address."""

    email = forms.EmailField(max_length=254)

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
