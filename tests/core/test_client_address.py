"""The client address the per-address limits count: REMOTE_ADDR, or behind the proxies named in
TRUSTED_PROXIES the address the nearest of them saw; never an address the client wrote."""

import ipaddress

import pytest
from django.test import RequestFactory

from core.client_address import client_address

BALANCER = "10.1.0.5"
INGRESS = "10.2.0.9"


@pytest.fixture
def trust(settings):
    def trust(*networks: str) -> None:
        settings.TRUSTED_PROXIES = tuple(ipaddress.ip_network(n) for n in networks)

    trust()  # nothing trusted unless a test says so
    return trust


def seen_from(remote_addr: str, forwarded_for: str | None = None) -> str:
    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote_addr, **headers).META)


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says(trust):
    assert seen_from("203.0.113.7") == "203.0.113.7"
    assert seen_from("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_another_client(trust):
    trust("10.1.0.0/16")

    assert seen_from("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_appended(trust):
    trust("10.1.0.0/16")

    assert seen_from(BALANCER, "198.51.100.1") == "198.51.100.1"


def test_addresses_the_client_wrote_before_the_proxys_entry_are_never_read(trust):
    trust("10.1.0.0/16")

    # The client sent "X-Forwarded-For: 1.2.3.4"; the balancer appended what it saw.
    assert seen_from(BALANCER, "1.2.3.4, 198.51.100.1") == "198.51.100.1"
    assert seen_from(BALANCER, "1.2.3.4,198.51.100.1") == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_first_untrusted_hop(trust):
    trust("10.1.0.0/16", "10.2.0.0/16")

    # client -> balancer (10.1.0.5) -> ingress (10.2.0.9) -> us
    assert seen_from(INGRESS, f"1.2.3.4, 198.51.100.1, {BALANCER}") == "198.51.100.1"


def test_when_every_hop_is_trusted_the_farthest_proxy_is_the_client(trust):
    trust("10.0.0.0/8")

    assert seen_from(INGRESS, BALANCER) == BALANCER
    assert seen_from(BALANCER) == BALANCER  # no header at all


@pytest.mark.parametrize(
    "garbage", ["unknown", "", "<script>", "198.51.100.1:http", "[2001:db8::1]", "::1:80:x"]
)
def test_an_entry_that_is_not_an_address_stops_at_the_proxy_that_wrote_it(trust, garbage):
    trust("10.1.0.0/16", "10.2.0.0/16")

    assert seen_from(INGRESS, f"198.51.100.1, {garbage}") == INGRESS
    assert seen_from(INGRESS, f"198.51.100.1, {garbage}, {BALANCER}") == BALANCER


def test_addresses_are_canonical_so_one_client_is_counted_once(trust):
    trust("10.1.0.0/16", "2001:db8:ffff::/48")

    assert seen_from(BALANCER, "2001:DB8:0:0::1") == "2001:db8::1"
    assert seen_from(BALANCER, "::ffff:198.51.100.1") == "198.51.100.1"
    # A proxy on a dual-stack listener shows up as an IPv4-mapped address, and is still trusted.
    assert seen_from("::ffff:10.1.0.5", "198.51.100.1") == "198.51.100.1"


@pytest.mark.parametrize(
    ("entry", "client"),
    [
        ("198.51.100.1:4711", "198.51.100.1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[::ffff:198.51.100.1]:4711", "198.51.100.1"),
    ],
)
def test_a_port_the_proxy_appended_is_dropped(trust, entry, client):
    trust("10.1.0.0/16")

    assert seen_from(BALANCER, entry) == client
    # The client's ephemeral port changes with each connection; its address does not.
    assert seen_from(BALANCER, entry.replace("4711", "4712")) == client


def test_a_bare_ipv6_address_is_not_mistaken_for_an_address_and_a_port(trust):
    trust("10.1.0.0/16")

    assert seen_from(BALANCER, "2001:db8::1:80") == "2001:db8::1:80"


def test_a_peer_without_an_ip_address_is_passed_through(trust):
    trust("10.0.0.0/8")

    assert seen_from("", "198.51.100.1") == ""
