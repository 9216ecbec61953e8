"""Secrets encrypted at rest (provider keys today, webhook secrets later), and their rotation.

Fernet tokens through a MultiFernet: the first key of ``VIDEO_ENCRYPTION_KEYS`` encrypts,
every key decrypts, so an operator adds a new key in front, runs ``manage.py reencrypt`` and
only then drops the old one. Without ``VIDEO_ENCRYPTION_KEYS`` the key is derived from
``SECRET_KEY`` (a deploy check warns about it), so a fresh clone needs no extra setting.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

# Every encrypted column, as (model label, field name): `manage.py reencrypt` rotates exactly
# these, so a new encrypted field is added here or it keeps the old key alive forever.
ENCRYPTED_FIELDS: list[tuple[str, str]] = [
    ("teams.ProviderConnection", "api_key_encrypted"),
    ("teams.ProviderConnection", "hook_secret_encrypted"),
    ("notifications.NotificationChannel", "target_encrypted"),
    ("notifications.NotificationChannel", "secret_encrypted"),
]

# What the deploy check and start-up errors tell an operator to run for a new key.
GENERATE_KEY_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)

# Fixed, and distinct from anything else derived from SECRET_KEY (sessions, signing), so
# the encryption key cannot be recomputed from another use of the same secret.
_DERIVATION_SALT = b"video-dashboard encryption"
_DERIVATION_INFO = b"video-dashboard encryption"

_KEY_SETTINGS = {"VIDEO_ENCRYPTION_KEYS", "SECRET_KEY", "SECRET_KEY_FALLBACKS"}


class Unreadable(Exception):
    """A stored secret that no configured key decrypts.

    The message names no token and no key: it ends up in logs, on the admin and in the
    output of commands.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "A stored secret could not be decrypted with any configured key "
            "(VIDEO_ENCRYPTION_KEYS, or SECRET_KEY and SECRET_KEY_FALLBACKS when that is unset)."
        )


def validated_keys(name: str, keys: list[str]) -> list[str]:
    """The keys of setting `name`, refused at start-up if any is not a Fernet key.

    The error names the variable and the position only: echoing a key (even a mistyped one)
    would put it in the deploy log.
    """
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name}: key {position} of {len(keys)} is not a Fernet key "
                f"(32 url-safe base64-encoded bytes). Generate one with: {GENERATE_KEY_COMMAND}"
            ) from None
    return keys


def derive_key(secret: str) -> bytes:
    """A Fernet key derived from a Django secret key (the default when no key is configured)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_DERIVATION_SALT, info=_DERIVATION_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(raw)


@cache
def _fernets() -> tuple[Fernet, MultiFernet]:
    # Built once per process (HKDF and key parsing are not free) and dropped when a test
    # overrides one of the settings it reads, see _forget_keys below.
    keys: list[str | bytes] = list(settings.VIDEO_ENCRYPTION_KEYS)
    # The keys derived from SECRET_KEY (and its fallbacks) always decrypt, after the
    # configured ones: so a deployment that starts with the derived default and later sets
    # VIDEO_ENCRYPTION_KEYS still reads what it stored, until `reencrypt` moves it over.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    keys.extend(derive_key(secret) for secret in secrets if secret)
    fernets = [Fernet(key) for key in keys]
    return fernets[0], MultiFernet(fernets)


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    if setting in _KEY_SETTINGS:
        _fernets.cache_clear()


def encrypt(plaintext: str) -> str:
    """A Fernet token (text) of `plaintext`, under the first configured key."""
    return _fernets()[1].encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of `token`; Unreadable when no configured key decrypts it."""
    try:
        return _fernets()[1].decrypt(token).decode()
    except (InvalidToken, UnicodeError, TypeError, ValueError):
        # `from None`: the cause would carry nothing useful and a traceback is no place for
        # anything derived from the token.
        raise Unreadable from None


def rotate(token: str) -> str:
    """`token` re-encrypted under the first configured key; Unreadable when no key decrypts it."""
    try:
        return _fernets()[1].rotate(token).decode("ascii")
    except (InvalidToken, UnicodeError, TypeError, ValueError):
        raise Unreadable from None


def is_current(token: str) -> bool:
    """Whether `token` is encrypted under the first configured key (nothing left to rotate)."""
    try:
        _fernets()[0].decrypt(token)
    except (InvalidToken, UnicodeError, TypeError, ValueError):
        return False
    return True
