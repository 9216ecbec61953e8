"""The form a manager adds or edits a notification channel with.

A channel's URL is a place the worker will POST to: checked by the rule for untrusted links
here (teams.connection_forms.check_base_url: public addresses only, unless the host is in
VIDEO_FETCH_ALLOW_HOSTS), and again at every send (notifications.transports). The URL is
write-only: it embeds the receiver's token, so it is never rendered back.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_email

from notifications.models import CHOOSABLE_EVENTS, DEFAULT_EVENTS, NotificationChannel
from teams.connection_forms import check_base_url

Kind = NotificationChannel.Kind
MAX_ADDRESSES = 10


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices, initial=Kind.WEBHOOK)
    name = forms.CharField(max_length=100, required=False, help_text="Optional, to tell channels apart.")
    target = forms.CharField(
        label="URL or email addresses",
        max_length=2000,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The receiver's URL (Slack, Discord and Teams give one), or comma-separated "
        "email addresses. Shown only as its host and last characters once saved.",
    )
    events = forms.MultipleChoiceField(
        choices=[(kind.value, kind.label) for kind in CHOOSABLE_EVENTS],
        initial=DEFAULT_EVENTS,
        widget=forms.CheckboxSelectMultiple,
    )
    only_mine = forms.BooleanField(
        label="Only my tasks",
        required=False,
        help_text="Task events of the tasks you added, not the whole team's.",
    )

    def __init__(self, *args: Any, channel: NotificationChannel | None = None, **kwargs: Any) -> None:
        self.channel = channel
        if channel is not None:
            kwargs.setdefault(
                "initial", {"name": channel.name, "events": channel.events, "only_mine": channel.only_mine}
            )
        super().__init__(*args, **kwargs)
        if channel is not None:
            # The kind is fixed once made (a webhook's secret belongs to it).
            del self.fields["kind"]
            self.fields["target"].help_text = f"Now {channel.target_hint}. Leave blank to keep it."

    def channel_kind(self) -> str:
        return self.channel.kind if self.channel is not None else self.cleaned_data.get("kind", "")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        target = (data.get("target") or "").strip()
        if not self.channel_kind():
            return data
        if not target:
            if self.channel is None:
                self.add_error("target", "Required.")
            return data
        if self.channel_kind() == Kind.EMAIL:
            addresses = [a.strip() for a in target.split(",") if a.strip()]
            if not addresses or len(addresses) > MAX_ADDRESSES:
                self.add_error("target", f"Give 1 to {MAX_ADDRESSES} email addresses, comma-separated.")
                return data
            for address in addresses:
                try:
                    validate_email(address)
                except forms.ValidationError:
                    self.add_error("target", f"Not an email address: {address[:100]}")
                    return data
            data["target"] = ", ".join(addresses)
        else:
            if not target.lower().startswith(("https://", "http://")):
                self.add_error("target", "Give the receiver's http(s) URL.")
                return data
            try:
                check_base_url(target)
            except forms.ValidationError as error:
                self.add_error("target", error)
                return data
            data["target"] = target
        return data

    def save(self, workspace: Any = None, user: Any = None) -> NotificationChannel:
        data = self.cleaned_data
        channel = self.channel or NotificationChannel(workspace=workspace, kind=data["kind"], created_by=user)
        channel.name = data["name"]
        channel.events = list(data["events"])
        channel.only_mine = data["only_mine"]
        if data.get("target"):
            channel.target = data["target"]
        channel.save()
        return channel
