"""Secrets at rest: which keys encrypt, which decrypt, and what an unreadable secret says."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from dashboard import checks, encryption
from dashboard.encryption import Unreadable, decrypt, encrypt, is_current, rotate, validated_keys
from tests.test_settings import PRODUCTION, manage

SECRET = "sk-provider-secret-0123456789"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_round_trip(settings):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    token = encrypt(SECRET)
    assert SECRET not in token
    assert decrypt(token) == SECRET
    assert encrypt(SECRET) != token  # a fresh IV each time: equal secrets do not show


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    under_a = encrypt(SECRET)

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    under_b = encrypt(SECRET)
    assert decrypt(under_a) == decrypt(under_b) == SECRET
    assert Fernet(KEY_B).decrypt(under_b).decode() == SECRET
    assert is_current(under_b)
    assert not is_current(under_a)

    rotated = rotate(under_a)
    assert is_current(rotated)
    assert Fernet(KEY_B).decrypt(rotated).decode() == SECRET


def test_a_token_under_a_dropped_key_is_unreadable_and_says_nothing_secret(settings):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    token = encrypt(SECRET)
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_B]

    for operation in (decrypt, rotate):
        with pytest.raises(Unreadable) as caught:
            operation(token)
        message = str(caught.value)
        for material in (token, KEY_A, KEY_B, SECRET, settings.SECRET_KEY):
            assert material not in message
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
    assert not is_current(token)


@pytest.mark.parametrize("garbage", ["", "not a token", "gAAAAA" + "x" * 80, "é"])
def test_garbage_is_unreadable(settings, garbage):
    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(Unreadable):
        decrypt(garbage)


def test_without_configured_keys_the_key_derives_from_secret_key(settings):
    settings.VIDEO_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "first-secret-key-" + "a" * 40
    settings.SECRET_KEY_FALLBACKS = []
    token = encrypt(SECRET)
    # Derived deterministically, so another process with the same SECRET_KEY reads it.
    assert Fernet(encryption.derive_key(settings.SECRET_KEY)).decrypt(token).decode() == SECRET

    settings.SECRET_KEY = "second-secret-key-" + "b" * 40
    with pytest.raises(Unreadable):
        decrypt(token)

    settings.SECRET_KEY_FALLBACKS = ["first-secret-key-" + "a" * 40]
    assert decrypt(token) == SECRET
    assert not is_current(token)
    assert is_current(rotate(token))


def test_setting_keys_later_still_reads_what_the_derived_key_stored(settings):
    settings.VIDEO_ENCRYPTION_KEYS = []
    token = encrypt(SECRET)

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    assert decrypt(token) == SECRET
    assert Fernet(KEY_A).decrypt(rotate(token)).decode() == SECRET


def test_derived_keys_differ_per_secret_and_are_fernet_keys():
    one, other = encryption.derive_key("one"), encryption.derive_key("other")
    assert one != other
    Fernet(one)
    assert encryption.derive_key("one") == one


def test_validated_keys_accepts_fernet_keys():
    assert validated_keys("VIDEO_ENCRYPTION_KEYS", [KEY_A, KEY_B]) == [KEY_A, KEY_B]
    assert validated_keys("VIDEO_ENCRYPTION_KEYS", []) == []


# Too short, truncated, not base64, and well-formed base64 of 16 bytes instead of 32.
# Fixed ids: KEY_A is generated per process, and pytest-xdist needs every worker to
# collect the same test names.
@pytest.mark.parametrize(
    "bad",
    ["short", KEY_A[:-4], "!" * 44, "eHh4eHh4eHh4eHh4eHh4eA=="],
    ids=["short", "truncated", "not-base64", "16-bytes"],
)
def test_a_malformed_key_names_the_variable_and_position_not_the_value(bad):
    with pytest.raises(ImproperlyConfigured) as caught:
        validated_keys("VIDEO_ENCRYPTION_KEYS", [KEY_A, bad])
    message = str(caught.value)
    assert "VIDEO_ENCRYPTION_KEYS" in message
    assert "key 2 of 2" in message
    assert bad not in message
    assert KEY_A not in message


def test_a_malformed_key_in_the_environment_stops_start_up():
    bad = "not-a-fernet-key-but-a-secret-nonetheless"
    result = manage("check", **{**PRODUCTION, "VIDEO_ENCRYPTION_KEYS": f"{KEY_A}, {bad}"})
    assert result.returncode != 0
    assert "VIDEO_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in result.stderr
    assert bad not in result.stdout + result.stderr
    assert KEY_A not in result.stdout + result.stderr


def test_the_deploy_check_warns_only_when_keys_are_unset(settings):
    settings.VIDEO_ENCRYPTION_KEYS = []
    [warning] = checks.check_encryption_keys(None)
    assert warning.id == "dashboard.W003"
    assert "derived from SECRET_KEY" in warning.msg
    assert "SECRET_KEY_FALLBACKS" in warning.msg
    assert "Fernet.generate_key()" in warning.hint

    settings.VIDEO_ENCRYPTION_KEYS = [KEY_A]
    assert checks.check_encryption_keys(None) == []


def test_the_deploy_check_runs_only_with_deploy():
    env = {k: v for k, v in PRODUCTION.items() if k != "VIDEO_ENCRYPTION_KEYS"}
    assert "dashboard.W003" not in manage("check", **env).stderr
    deploy = manage("check", "--deploy", **env)
    assert "dashboard.W003" in deploy.stdout + deploy.stderr
