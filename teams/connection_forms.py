"""The form a manager adds or edits a workspace's provider connection with.

The base URL is something a person typed that the server will request, with a key, from
then on: it is checked by the rule for untrusted links (videos.safe_fetch.vet_destination),
because a workspace manager is not an operator and must not aim the worker at the
deployment's own network. The key is write-only: never rendered back, not even into the
form after an error.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.db import transaction

from teams.models import ProviderConnection, Workspace
from videos.safe_fetch import FetchFailed, FetchRefused, Resolver, system_resolver, vet_destination

# Requests per second a connection may be given, at most (VIDEO_API_MAX_RPS has the same bound).
MAX_RPS = 10_000
MAX_KEY_LENGTH = 500

# What resolves a base URL's host name; tests point it at a fake DNS answer.
resolve: Resolver = system_resolver

# Labels of changed fields for the audit trail: what changed, never to what (the key above all).
_CHANGE_LABELS = {
    "name": "name",
    "base_url": "base URL",
    "max_rps": "request ceiling",
    "is_default": "default",
}


def check_base_url(url: str) -> None:
    """Raise forms.ValidationError unless the server may send requests to `url`'s host: one
    that resolves only to public addresses, or one an operator listed in
    VIDEO_FETCH_ALLOW_HOSTS. Checked when a connection is saved and again when it is tested
    (a name's addresses can change in between)."""
    try:
        vet_destination(url, allow_hosts=settings.VIDEO_FETCH_ALLOW_HOSTS, resolver=resolve)
    except FetchRefused as error:
        raise forms.ValidationError(
            f"{error.reason} An operator can allow this host with VIDEO_FETCH_ALLOW_HOSTS.", code="forbidden"
        ) from None
    except FetchFailed:
        raise forms.ValidationError(
            "Could not resolve %(host)s: check the host name.",
            code="unresolvable",
            params={"host": urlsplit(url).hostname or "the host"},
        ) from None


def clean_base_url_text(raw: str) -> str:
    """The base URL as stored: http(s), a host, no credentials, query or fragment, no dot
    segments, no trailing slash. Raises forms.ValidationError with a message for a person."""
    url = raw.strip().rstrip("/")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise forms.ValidationError("A base URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError:
        raise forms.ValidationError("This is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise forms.ValidationError("The base URL must start with https:// (or http://).")
    if "@" in parts.netloc:
        raise forms.ValidationError("Leave the user name and password out of the URL: the key goes below.")
    if not parts.hostname:
        raise forms.ValidationError("The base URL needs a host name.")
    if "?" in url or "#" in url:
        raise forms.ValidationError("The base URL cannot have a query (?…) or a fragment (#…).")
    segments = parts.path.replace("%2e", ".").replace("%2E", ".").split("/")
    if any(segment in (".", "..") for segment in segments):
        raise forms.ValidationError("The base URL cannot contain . or .. path segments.")
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a base URL: the server its key is sent to."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or ""), parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        return ("", url, None)


def clean_key_text(key: str) -> str:
    """A key as typed, checked: it is sent in a header, so anything that could split or
    corrupt one is refused (and never echoed: the message does not quote the value)."""
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in key):
        raise forms.ValidationError("A key cannot contain spaces, line breaks or non-ASCII characters.")
    return key


class ConnectionForm(forms.ModelForm):
    # "new-password": browsers then never fill in the person's saved sign-in password here,
    # which would be stored as the provider key without anyone noticing.
    api_key = forms.CharField(
        label="Key",
        required=False,
        strip=True,
        max_length=MAX_KEY_LENGTH,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
        help_text="The provider's API key. Stored encrypted; only its last four characters are shown again.",
    )

    max_rps = forms.FloatField(
        label="Request ceiling",
        required=False,
        min_value=0,
        max_value=MAX_RPS,
        initial=0,
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text=f"Requests per second at most; 0 for no ceiling (up to {MAX_RPS}).",
    )

    # Write-only like the key: the provider's webhook signing secret, pasted in (OpenAI and
    # OpenRouter generate theirs); the hook section can also generate one here.
    hook_secret = forms.CharField(
        label="Webhook signing secret",
        required=False,
        strip=True,
        max_length=MAX_KEY_LENGTH,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "spellcheck": "false"}
        ),
        help_text="The secret your provider signs its webhook events with (e.g. whsec_…). Stored "
        "encrypted and never shown again. Leave empty to keep the current one.",
    )

    class Meta:
        model = ProviderConnection
        fields = ["name", "base_url", "api_key", "max_rps", "is_default", "hook_secret"]
        labels = {"is_default": "Default for this workspace"}
        help_texts = {
            "base_url": "The API root including its version prefix, e.g. https://gateway.example.com/v1 "
            "(requests go to …/v1/videos).",
            "is_default": "New tasks of this workspace use this connection unless another is chosen.",
        }
        widgets = {"base_url": forms.URLInput(attrs={"spellcheck": "false"})}

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.instance.workspace = workspace
        # Compared with the cleaned values: "…/v1/" for a stored "…/v1" is no change.
        self.saved = {name: getattr(self.instance, name) for name in _CHANGE_LABELS}
        key_field = self.fields["api_key"]
        if self.is_adding:
            key_field.required = True
        else:
            current = self.instance.masked_key
            key_field.help_text = (
                f"Current key: {current}. Leave empty to keep it; type a new one to replace it."
            )

    @property
    def is_adding(self) -> bool:
        return self.instance.pk is None

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = self.workspace.connections.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("This workspace already has a connection with this name.")
        return name

    def clean_base_url(self) -> str:
        url = clean_base_url_text(self.cleaned_data["base_url"])
        check_base_url(url)
        return url

    def clean_api_key(self) -> str:
        return clean_key_text(self.cleaned_data["api_key"])

    def clean_hook_secret(self) -> str:
        return clean_key_text(self.cleaned_data["hook_secret"])

    def clean_max_rps(self) -> float:
        value = self.cleaned_data["max_rps"]
        return 0.0 if value is None else value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        url = cleaned.get("base_url")
        # The stored key goes only to the server it was entered for: otherwise any manager
        # could read a write-only key back by pointing the connection at a server of theirs.
        if (
            not self.is_adding
            and url
            and self.instance.api_key_encrypted
            and not cleaned.get("api_key")
            and _origin(url) != _origin(self.saved["base_url"])
        ):
            self.add_error(
                "api_key",
                "Enter the key again to point this connection at another server: the stored key "
                "is only ever sent to the server it was entered for.",
            )
        return cleaned

    def changes(self) -> list[str]:
        """What this save changes, in words for the audit trail ("key replaced": never the key)."""
        changed = [label for name, label in _CHANGE_LABELS.items() if self._changed(name)]
        if self.cleaned_data.get("api_key"):
            changed.append("key replaced")
        if self.cleaned_data.get("hook_secret"):
            changed.append("webhook secret replaced")
        return changed

    def key_or_url_changed(self) -> bool:
        return bool(self.cleaned_data.get("api_key")) or self._changed("base_url")

    def _changed(self, name: str) -> bool:
        return self.is_adding or self.cleaned_data.get(name) != self.saved[name]

    def save(self, commit: bool = True) -> ProviderConnection:
        """Save the connection; a new key is encrypted, and a new default unsets the previous
        one in the same transaction (one default per workspace: connection_one_default)."""
        connection = super().save(commit=False)
        connection.workspace = self.workspace
        if self.cleaned_data.get("api_key"):
            connection.set_api_key(self.cleaned_data["api_key"])
        if self.cleaned_data.get("hook_secret"):
            connection.set_hook_secret(self.cleaned_data["hook_secret"])
        with transaction.atomic():
            if connection.is_default:
                self.workspace.connections.filter(is_default=True).exclude(pk=connection.pk).update(
                    is_default=False
                )
            connection.save()
        return connection
