"""Password reset: offered only where email can arrive, and its answer the same whether or
not an account has the address (the email leaves from a background thread, so these
tests commit their users where that thread can see them)."""

from __future__ import annotations

import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import set_script_prefix

from dashboard.accounts import wait_for_mail

RESET = "/accounts/password_reset/"


@pytest.fixture
def email_configured(settings):
    settings.PASSWORD_RESET_ENABLED = True
    # pytest-django keeps sent mail in django.core.mail.outbox (the locmem backend).
    return settings


@pytest.fixture
def reader(transactional_db):
    return get_user_model().objects.create_user(
        "reader", email="reader@example.com", password="reader-password-1"
    )


def ask_for_reset(client, email: str, **extra):
    response = client.post(RESET, {"email": email}, **extra)
    wait_for_mail()
    return response


def reset_link(message) -> str:
    match = re.search(r"http://testserver(/\S*/reset/\S+/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_an_account_gets_an_email_with_a_working_link(client, email_configured, reader, mailoutbox):
    response = ask_for_reset(client, "reader@example.com")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    assert "If an account has that address" in client.get(response["Location"]).content.decode()

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["reader@example.com"]
    assert "reader" in message.body

    form_page = client.get(reset_link(message), follow=True)
    assert form_page.status_code == 200
    assert 'name="new_password1"' in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase-7", "new_password2": "a-new-long-passphrase-7"},
    )
    assert done["Location"] == "/accounts/reset/done/"
    assert client.get("/accounts/reset/done/").status_code == 200

    login = {"username": "reader", "password": "a-new-long-passphrase-7"}
    assert client.post("/accounts/login/", login).status_code == 302
    # The link works once.
    assert "not valid" in client.get(reset_link(message), follow=True).content.decode()


def test_an_unknown_address_gets_the_same_answer_and_no_email(client, email_configured, reader, mailoutbox):
    known = ask_for_reset(client, "reader@example.com")
    unknown = ask_for_reset(client, "nobody@example.com")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert [message.to for message in mailoutbox] == [["reader@example.com"]]


class HeldBackend(BaseEmailBackend):
    """Sends only when the test lets it: a mail server that takes its time."""

    release = threading.Event()

    def send_messages(self, messages):
        assert self.release.wait(timeout=30)
        mail.outbox.extend(messages)
        return len(messages)


def test_the_answer_does_not_wait_for_the_email(client, email_configured, reader, mailoutbox):
    email_configured.EMAIL_BACKEND = f"{__name__}.HeldBackend"
    HeldBackend.release.clear()
    try:
        response = client.post(RESET, {"email": "reader@example.com"})
        assert response.status_code == 302  # answered while the mail server still holds the email
        assert mailoutbox == []
    finally:
        HeldBackend.release.set()
    wait_for_mail()
    assert len(mailoutbox) == 1


def test_the_link_keeps_the_mount_point(client, email_configured, reader, mailoutbox):
    # What the WSGI handler does for an app mounted at /videos (the test client does not).
    set_script_prefix("/videos/")
    try:
        response = ask_for_reset(client, "reader@example.com")
    finally:
        set_script_prefix("/")
    assert response["Location"] == "/videos/accounts/password_reset/done/"
    assert reset_link(mailoutbox[0]).startswith("/videos/accounts/reset/")


def test_the_login_page_offers_reset_only_with_email(client, settings, db):
    settings.PASSWORD_RESET_ENABLED = True
    assert RESET in client.get("/accounts/login/").content.decode()
    settings.PASSWORD_RESET_ENABLED = False
    assert RESET not in client.get("/accounts/login/").content.decode()


@pytest.mark.parametrize(
    "url",
    [RESET, "/accounts/password_reset/done/", "/accounts/reset/MQ/set-password/", "/accounts/reset/done/"],
)
def test_without_email_the_reset_pages_do_not_exist(client, settings, reader, url, mailoutbox):
    settings.PASSWORD_RESET_ENABLED = False
    assert client.get(url).status_code == 404
    assert client.post(url, {"email": "reader@example.com"}).status_code == 404
    wait_for_mail()
    assert mailoutbox == []
