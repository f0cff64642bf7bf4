"""This server's own addresses: where a webhook, a forward or a replay must not point.

A webhook whose URL is this server's API fires itself: each delivery makes another (POST
/api/events/<slug>), or a test event nests into the next one (POST /api/webhooks/<id>/test).
A forward to a capture URL of this server comes straight back. So these URLs are refused
when they are saved, with a 422 that says why: `points_here(url, this_server())`.

The same address has many spellings, and all of them reach the server: `127.1`,
`2130706433`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]`, `localhost.`, `app.localhost`, a path with
`%62` for `b`. They are compared as addresses, not as text. A DNS name that happens to point
here is not looked up (a save must not wait for a resolver); the run-time guard catches
those: the app refuses any request that is itself a Hooklab delivery, probe or forward
(`is_from_hooklab`, used by shared/security.py).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

import requests
from flask import has_request_context, request

from hooklab.shared.settings import Settings

# Headers every request Hooklab sends carries (deliveries, probes, forwards). A replay is
# sent as captured, with nothing added: its URL is checked when asked for (as_sent below).
MARKER_HEADERS = ("X-Hooklab-Delivery", "X-Hooklab-Probe", "X-Hooklab-Hops")
CAPTURE_PREFIX = "/b/"
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ServerAddress:
    """The (name, port) pairs that reach this server, and the ports loopback reaches it on."""

    names: frozenset[tuple[str, int]]
    loopback_ports: frozenset[int]


def address_of(host: str) -> IPAddress | None:
    """`host` as an IP address, in any spelling a resolver takes literally, or None for a name.

    IPv4 also in the old forms inet_aton accepts (127.1, 2130706433, 0x7f.1), as
    getaddrinfo does; an IPv4-mapped IPv6 address as its IPv4 address.
    """
    host = host.strip("[]").split("%")[0]
    try:
        address: IPAddress = ipaddress.ip_address(host)
    except ValueError:
        if not host or not all(c.isascii() and (c.isalnum() or c == ".") for c in host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _reaches_loopback(host: str) -> bool:
    """Whether a server listening on `host` answers on loopback (0.0.0.0 and :: do too)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    address = address_of(host)
    return address is not None and (address.is_loopback or address.is_unspecified)


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return None


def this_server(settings: Settings) -> ServerAddress:
    """The addresses of this server: its --host and --port, --public-url, --allow-host, and
    (during a request) the port the request came in on and the Host it named."""
    ports = {settings.port}
    names: set[tuple[str, int]] = set()
    if has_request_context():
        try:
            ports.add(int(request.environ.get("SERVER_PORT") or settings.port))
        except ValueError:
            pass
        own = urlsplit(request.host_url)
        if own.hostname and _port(own) is not None:
            names.add((own.hostname.lower(), _port(own)))
    host = settings.host.strip("[]").lower()
    names.update((host, port) for port in ports)
    for url in (settings.public_url, *(f"//{name}" for name in settings.allow_host)):
        if not url:
            continue
        try:
            parts = urlsplit(url)
            port = _port(parts) if parts.scheme else (parts.port or settings.port)
        except ValueError:
            continue
        if parts.hostname and port is not None:
            names.add((parts.hostname.lower(), port))
    loopback = frozenset(ports) if _reaches_loopback(settings.host) else frozenset()
    return ServerAddress(frozenset(names), loopback)


def server_at(base_url: str) -> ServerAddress | None:
    """The addresses of a Hooklab server as a client knows it, by its base URL (the CLI's
    --server), or None when the URL names no host and port."""
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, _port(parts)
    except ValueError:
        return None
    if not host or port is None:
        return None
    host = host.lower().rstrip(".")
    loopback = frozenset({port}) if _reaches_loopback(host) else frozenset()
    return ServerAddress(frozenset({(host, port)}), loopback)


def as_sent(url: str) -> str:
    """`url` as the HTTP library will send it, which is what reaches a server: requests
    (urllib3) takes a `\\` for a `/` (`http://here:80\\@x/` goes to `here`, where urlsplit
    reads the host `x`) and resolves `.` and `..` segments (`/b/../api` is `/api`)."""
    url = url.strip()
    try:
        return requests.Request("GET", url).prepare().url or url
    except (requests.RequestException, ValueError, UnicodeError):
        return url  # not a URL requests would send to: the caller's own checks say why


def points_here(url: str, server: ServerAddress) -> bool:
    """Whether `url` (http or https) reaches this server, in any spelling of its address."""
    try:
        parts = urlsplit(as_sent(url))
        host = parts.hostname
    except ValueError:
        return False
    port = _port(parts)
    if not host or port is None:
        return False
    host = host.lower().rstrip(".")
    if (host, port) in server.names:
        return True
    if port not in server.loopback_ports:
        address = address_of(host)
        return address is not None and any(
            address == address_of(name) for name, p in server.names if p == port
        )
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = address_of(host)
    if address is None:
        return False
    return (
        address.is_loopback
        or address.is_unspecified
        or any(address == address_of(name) for name, p in server.names if p == port)
    )


def is_capture_url(url: str) -> bool:
    """Whether `url`'s path is a bin's capture path (/b/…), as the server will decode it."""
    try:
        path = urlsplit(as_sent(url)).path
    except ValueError:
        return False
    return unquote(path).startswith(CAPTURE_PREFIX)


def is_from_hooklab(headers) -> str | None:
    """The marker header of a request Hooklab itself sent (a delivery, probe or forward)."""
    for name in MARKER_HEADERS:
        if name in headers:
            return name
    return None
