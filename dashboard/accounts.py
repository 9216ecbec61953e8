"""Signing in: the login page, what a throttled client sees, and password reset.

Password reset is offered only where its email can arrive (PASSWORD_RESET_ENABLED), and
its email is sent off the request path, so the answer takes the same time whether or not
an account has the address.
"""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import get_script_prefix, set_script_prefix
from django.utils import translation

logger = logging.getLogger(__name__)

# Reset emails waiting or being sent, per process. Beyond this a request is answered as
# usual and its email dropped (and logged): a flood of reset requests must not pile up
# threads' work without end.
MAX_PENDING_MAIL = 100

_mail_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-reset-mail")
_pending: set[Future] = set()
_pending_lock = threading.Lock()


class LoginView(auth_views.LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "password_reset_enabled": settings.PASSWORD_RESET_ENABLED,
        }


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """What django-axes answers a locked-out client (AXES_LOCKOUT_CALLABLE).

    The same page whether or not the account exists: axes counts failures for any name.
    """
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {
            "cooloff_minutes": math.ceil(seconds / 60),
            "password_reset_enabled": settings.PASSWORD_RESET_ENABLED,
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


class ResetOfferedMixin:
    """The reset pages exist only where password reset is offered."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.PASSWORD_RESET_ENABLED:
            raise Http404("Password reset is not offered.")
        return super().dispatch(request, *args, **kwargs)


class PasswordResetView(ResetOfferedMixin, auth_views.PasswordResetView):
    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        # Looking the address up and sending happen in the background: either one would
        # otherwise tell, by the time the answer takes, whether an account has it.
        options = {
            "domain_override": self.request.get_host(),
            "use_https": self.request.is_secure(),
            "token_generator": self.token_generator,
            "from_email": self.from_email,
            "email_template_name": self.email_template_name,
            "subject_template_name": self.subject_template_name,
            "html_email_template_name": self.html_email_template_name,
            "extra_email_context": self.extra_email_context,
        }
        send_in_background(
            form, options, script_prefix=get_script_prefix(), language=translation.get_language()
        )
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(ResetOfferedMixin, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(ResetOfferedMixin, auth_views.PasswordResetConfirmView):
    pass


class PasswordResetCompleteView(ResetOfferedMixin, auth_views.PasswordResetCompleteView):
    pass


def send_in_background(
    form: PasswordResetForm, options: dict[str, Any], *, script_prefix: str, language: str
) -> None:
    with _pending_lock:
        if len(_pending) >= MAX_PENDING_MAIL:
            logger.warning(
                "password reset: %d emails already waiting; this request's is dropped", len(_pending)
            )
            return
        future = _mail_executor.submit(_send, form, options, script_prefix, language)
        _pending.add(future)
    future.add_done_callback(_forget)


def wait_for_mail(timeout: float = 30.0) -> None:
    """Block until the reset emails queued so far are sent (tests; a graceful stop)."""
    with _pending_lock:
        pending = set(_pending)
    wait_futures(pending, timeout=timeout)


def _forget(future: Future) -> None:
    with _pending_lock:
        _pending.discard(future)


def _send(form: PasswordResetForm, options: dict[str, Any], script_prefix: str, language: str) -> None:
    # The link in the email is reversed in this thread: give it the request's mount point
    # (SCRIPT_NAME) and language, which Django keeps per thread.
    set_script_prefix(script_prefix)
    try:
        with translation.override(language):
            form.save(**options)
    except Exception:
        logger.exception("password reset: could not prepare the email")
    finally:
        connections.close_all()
