"""The invitation email: Django's email framework, so `make run` prints it on the console
and production sends it over SMTP (EMAIL_* settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from teams.models import Invitation


def send_invitation(invitation: Invitation, link: str, inviter: Any) -> None:
    """Send `invitation` to its address with `link` (which holds the token: it goes into
    the email only, never a log line). Raises what the email backend raises."""
    context = {
        "invitation": invitation,
        "workspace": invitation.workspace,
        "role": invitation.get_role_display().lower(),
        "inviter": inviter.get_username(),
        "link": link,
        "expires_at": invitation.expires_at,
    }
    subject = " ".join(render_to_string("teams/invitation_email_subject.txt", context).split())
    body = render_to_string("teams/invitation_email.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email])
