"""Start-up checks for the deployment's own configuration (email)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

DJANGO_DEFAULT_FROM_EMAIL = "webmaster@localhost"


@register("dashboard")
def check_email_configuration(app_configs, **kwargs) -> list:
    if settings.DEBUG and not settings.EMAIL_HOST:
        return []  # make run: emails are printed to the console
    if not settings.EMAIL_HOST:
        return [
            Warning(
                "EMAIL_HOST is not set: no email can be sent, so password reset is not offered.",
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
