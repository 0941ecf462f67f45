"""The admin login is throttled per client address (seen through the trusted proxies) and per
username in Redis (a refusal is the login page with its message and a 429), keeps working when
Redis is down, and its cookies are Secure outside development."""

import ipaddress
import json
import sys

import pytest
from django.test import Client

from core import redis_keys
from tests import factories
from tests.config.test_settings import start

LOGIN = "/admin/login/"
LIMIT = 3
THROTTLED = "Too many failed login attempts"
WRONG = "not-the-password"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit(settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = LIMIT
    settings.ADMIN_LOGIN_WINDOW_SECONDS = 900


@pytest.fixture
def alice():
    return factories.make_staff_user("alice", *factories.view_permissions())


@pytest.fixture
def bob():
    return factories.make_staff_user("bob", *factories.view_permissions())


def log_in(
    username: str, password: str, *, address: str, forwarded_for: str | None = None
) -> tuple[Client, object]:
    """A fresh browser at `address` (a proxy's, when `forwarded_for` is the X-Forwarded-For it
    sends) posts the admin's login form; returns the browser and the answer."""
    client = Client()
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    form = {"username": username, "password": password, "next": "/admin/"}
    response = client.post(LOGIN, form, REMOTE_ADDR=address, **headers)
    return client, response


def assert_logged_in(client: Client, response) -> None:
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def assert_refused(client: Client, response) -> None:
    assert response.status_code == 429
    assert THROTTLED in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 302  # not logged in: back to the login page


def test_a_wrong_password_is_the_usual_login_error(alice):
    _, response = log_in("alice", WRONG, address="10.0.0.1")

    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()


def test_failures_from_one_address_lock_it_out_even_with_the_right_password(alice, redis_db):
    for n in range(LIMIT):
        _, response = log_in(f"user{n}", WRONG, address="10.0.0.1")  # any usernames
        assert response.status_code == 200

    client, response = log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.1")

    assert_refused(client, response)
    assert redis_db.zcard(redis_keys.admin_login_address_key("10.0.0.1")) == LIMIT
    # Another address is not locked out.
    assert_logged_in(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.2"))


def test_failures_for_one_username_lock_it_out_from_every_address(alice, bob):
    for n in range(LIMIT):
        log_in("alice", WRONG, address=f"10.0.1.{n}")

    assert_refused(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.2.1"))
    assert_refused(*log_in("ALICE", factories.STAFF_PASSWORD, address="10.0.2.1"))
    # The same fresh address still serves another user.
    assert_logged_in(*log_in("bob", factories.STAFF_PASSWORD, address="10.0.2.1"))


def test_successful_logins_are_not_counted_as_failures(alice):
    for _ in range(LIMIT + 2):
        assert_logged_in(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.1"))


def test_a_success_does_not_reset_failures_counted_elsewhere(alice, bob):
    for _ in range(LIMIT - 1):
        log_in("alice", WRONG, address="10.6.6.6")
    assert_logged_in(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.1"))

    log_in("bob", WRONG, address="10.6.6.6")  # the address's last allowed failure
    log_in("alice", WRONG, address="10.0.0.7")  # alice's last allowed failure

    assert_refused(*log_in("bob", factories.STAFF_PASSWORD, address="10.6.6.6"))
    assert_refused(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.9"))


def test_behind_a_trusted_proxy_each_client_is_counted_under_its_own_address(alice, bob, settings):
    settings.TRUSTED_PROXIES = (ipaddress.ip_network("10.9.0.0/24"),)
    for n in range(LIMIT):
        _, response = log_in(f"user{n}", WRONG, address="10.9.0.1", forwarded_for="203.0.113.7")
        assert response.status_code == 200

    # The guesser is locked out, whatever it writes into the header itself...
    assert_refused(
        *log_in("alice", WRONG, address="10.9.0.1", forwarded_for="198.51.100.9, 203.0.113.7")
    )
    # ...while an operator behind the same balancer still logs in.
    assert_logged_in(
        *log_in("bob", factories.STAFF_PASSWORD, address="10.9.0.1", forwarded_for="203.0.113.8")
    )


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_lockout(alice):
    for n in range(LIMIT):
        log_in(f"user{n}", WRONG, address="10.0.3.1", forwarded_for=f"198.51.100.{n}")

    assert_refused(
        *log_in("alice", factories.STAFF_PASSWORD, address="10.0.3.1", forwarded_for="192.0.2.1")
    )


def test_login_still_works_when_redis_is_down(alice, dead_redis, caplog):
    assert_logged_in(*log_in("alice", factories.STAFF_PASSWORD, address="10.0.0.1"))

    assert "admin login throttle unavailable" in caplog.text


def test_session_and_csrf_cookies_are_secure_outside_development(alice):
    client = Client()
    login_page = client.get(LOGIN)
    assert login_page.cookies["csrftoken"]["secure"] is True

    response = client.post(
        LOGIN, {"username": "alice", "password": factories.STAFF_PASSWORD, "next": "/admin/"}
    )

    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"] is True


_COOKIE_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE]))
"""


@pytest.mark.parametrize(("debug", "secure"), [("false", True), ("true", False)])
def test_cookies_are_secure_unless_debug(debug, secure):
    result = start([sys.executable, "-c", _COOKIE_PROBE], DEBUG=debug, SECRET_KEY="x" * 50)

    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [secure, secure]
