"""Start-up checks for the deployment's own configuration (email, encryption keys)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

from dashboard.encryption import GENERATE_KEY_COMMAND

DJANGO_DEFAULT_FROM_EMAIL = "webmaster@localhost"


@register("dashboard")
def check_email_configuration(app_configs, **kwargs) -> list:
    if settings.DEBUG and not settings.EMAIL_HOST:
        return []  # make run: emails are printed to the console
    if not settings.EMAIL_HOST:
        return [
            Warning(
                "EMAIL_HOST is not set: no email can be sent, so password reset is not offered "
                "and invitations to a workspace cannot be sent.",
                hint="Set EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, DEFAULT_FROM_EMAIL.",
                id="dashboard.W001",
            )
        ]
    if settings.DEFAULT_FROM_EMAIL == DJANGO_DEFAULT_FROM_EMAIL:
        return [
            Warning(
                "DEFAULT_FROM_EMAIL is not set: emails would come from webmaster@localhost, "
                "which most mail servers refuse.",
                hint="Set DEFAULT_FROM_EMAIL to an address the mail server may send as.",
                id="dashboard.W002",
            )
        ]
    return []


@register("dashboard", deploy=True)
def check_encryption_keys(app_configs, **kwargs) -> list:
    if settings.VIDEO_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "VIDEO_ENCRYPTION_KEYS is not set: keys are derived from SECRET_KEY; rotating SECRET_KEY "
            "without SECRET_KEY_FALLBACKS makes stored provider keys unreadable.",
            hint=(
                "Set VIDEO_ENCRYPTION_KEYS to a Fernet key, generated with: "
                f"{GENERATE_KEY_COMMAND} (then run `python manage.py reencrypt`)."
            ),
            id="dashboard.W003",
        )
    ]
