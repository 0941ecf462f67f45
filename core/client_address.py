"""The address a request came from, seen through the reverse proxies the operator trusts.

Limits that count per address (wrong API keys, admin logins) must count each client. Behind a
load balancer every request's REMOTE_ADDR is the balancer's, so one client's failures would
lock every client out; X-Forwarded-For names the client, but anyone can write that header. Only
the entries appended by proxies listed in TRUSTED_PROXIES are read.
"""

import ipaddress
from collections.abc import Mapping
from typing import Any

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(meta: Mapping[str, Any]) -> str:
    """The IP address of the client that sent the request whose WSGI environ is `meta`
    (`request.META`, Django's or DRF's).

    REMOTE_ADDR, unless it is a trusted proxy. Then X-Forwarded-For is read from its right end,
    where each proxy appends the address it received the request from, and the first entry that
    is not a trusted proxy is the client. Entries to its left came from the client itself and
    are never read, so a client cannot pick the address it is counted under. A port after the
    address is dropped. An entry that is not an IP address (a name, "unknown") ends the walk:
    the request is then counted under the last trusted proxy, shared but never chosen by the
    client.
    """
    peer = meta.get("REMOTE_ADDR", "")
    address = _parse(peer)
    if address is None:
        return peer  # not IP (a Unix socket): nothing to walk
    if not _trusted(address):
        return str(address)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    # Repeated X-Forwarded-For headers reach us joined by commas, in order (gunicorn joins them,
    # as HTTP allows for a list-valued field).
    for entry in reversed(forwarded.split(",") if forwarded else []):
        hop = _parse(entry.strip())
        if hop is None:
            break
        address = hop
        if not _trusted(hop):
            break
    return str(address)


def _parse(value: str) -> Address | None:
    address: Address | None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = _without_port(value)
        if address is None:
            return None
    # A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d: one client, one address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address) -> bool:
    return any(address in network for network in settings.TRUSTED_PROXIES)


def _without_port(value: str) -> Address | None:
    # Some balancers (Azure's Application Gateway among them) append "a.b.c.d:port" or
    # "[v6]:port". The port is the client's ephemeral one: counting by it would split a client.
    host, colon, port = value.rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()):
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # a bare IPv6 address has colons of its own: no port can be told apart
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
