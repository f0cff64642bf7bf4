"""The private-target block: refuse webhook URLs that resolve to non-public addresses.

On a shared deployment (`block_private_targets`), a webhook must not reach loopback, private
networks, link-local addresses (169.254.169.254 is the cloud metadata service), multicast,
reserved or otherwise non-global addresses. Two checks use this module:

- when a webhook is saved: `check_target(url)` (raises TargetBlocked, the API answers 422);
- before each attempt: `guarded_session()`, a requests.Session whose every new connection
  resolves the host once, checks every address, and connects only to an address it checked,
  so a DNS answer that changes between the check and the connection (rebinding) cannot slip
  through. A blocked target raises TargetBlocked from `session.post(...)`, before any
  connection is opened.

Both take an injectable resolver (same signature as socket.getaddrinfo), so tests never send
traffic to the addresses they check. Without one they use the module's `RESOLVER`.

Name resolution can hang (a dead DNS server), and a hung `getaddrinfo` cannot be interrupted
the way a socket read can. Inside `resolution_deadline(until)` (every delivery attempt), a
lookup runs in a helper thread and the caller gives up at the deadline, so a resolver that
hangs cannot hold a delivery worker past its attempt's timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

Resolver = Callable[..., list]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVER: Resolver = socket.getaddrinfo


_deadline = threading.local()


@contextmanager
def resolution_deadline(until: float) -> Iterator[None]:
    """Name lookups on this thread give up at `until` (a time.monotonic() value)."""
    previous = getattr(_deadline, "until", None)
    _deadline.until = until
    try:
        yield
    finally:
        _deadline.until = previous


def is_address(host: str) -> bool:
    """Whether `host` is an IP address already (nothing to look up)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def lookup(host: str, port: int, resolver: Resolver | None = None) -> list:
    """`resolver(host, port, type=SOCK_STREAM)`, given up with TimeoutError at the deadline."""
    resolve = resolver or RESOLVER
    until = getattr(_deadline, "until", None)
    if until is None:
        return resolve(host, port, type=socket.SOCK_STREAM)
    remaining = until - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"no time left to look up {host}")
    answer: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            answer["infos"] = resolve(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the waiting thread
            answer["error"] = exc
        finally:
            done.set()

    # A daemon thread: a lookup that never returns is left behind, not waited for.
    threading.Thread(target=run, name="hooklab-lookup", daemon=True).start()
    if not done.wait(remaining):
        raise TimeoutError(f"the DNS lookup of {host} did not finish in time")
    if "error" in answer:
        raise answer["error"]  # type: ignore[misc]
    return answer["infos"]  # type: ignore[return-value]


def connect_to_each(conn, addresses: list[str], new_conn: Callable[[], object]):
    """Open `conn` to the first of `addresses` that answers (urllib3 connection internals).

    The Host header and TLS name still use the connection's host, read before (Host) and
    after (TLS) this; only the address connected to changes.
    """
    name = conn._dns_host
    last: Exception | None = None
    for address in addresses:
        conn._dns_host = address
        try:
            return new_conn()
        except (NewConnectionError, ConnectTimeoutError) as exc:
            last = exc
        finally:
            conn._dns_host = name
    raise last  # type: ignore[misc]


class TargetBlocked(Exception):
    """A webhook target the private-target block refuses; the message says why in words."""

    def __init__(self, message: str, host: str | None = None, address: str | None = None):
        super().__init__(message)
        self.message = message
        self.host = host
        self.address = address


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why a webhook may not be sent to this IP address, or None when it is a public one."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        # 6to4 carries an IPv4 address inside: judge the address it leads to. (NAT64's
        # 64:ff9b::/96 needs no such case: Python counts it as reserved.)
        if ip.sixtofour is not None and (inner := blocked_reason(ip.sixtofour)) is not None:
            return f"a 6to4 address that leads to {inner}"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "an address that is not public"
    return None


def resolve_target(
    host: str,
    port: int,
    resolver: Resolver | None = None,
    blocked: Callable[[str], str | None] = blocked_reason,
) -> list[str]:
    """Every address `host` resolves to, once each, after checking them all.

    Raises TargetBlocked when any address is refused (a name with one private answer among
    public ones is refused too), and socket.gaierror when the name does not resolve.
    """
    host = host.strip("[]").rstrip(".")
    try:
        addresses = [str(ipaddress.ip_address(host.split("%")[0]))]
    except ValueError:
        infos = lookup(host, port, resolver)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    for address in addresses:
        reason = blocked(address)
        if reason is not None:
            where = host if host == address else f"{host} ({address})"
            raise TargetBlocked(
                f"{where} is {reason}; this server blocks private targets.", host, address
            )
    return addresses


def check_target(url: str, resolver: Resolver | None = None) -> list[str]:
    """Check a webhook URL against the block; returns the checked addresses.

    Raises TargetBlocked (its message fits a 422 on the `url` field) for a refused address,
    a host that does not resolve, or a URL that is not http(s) with a host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetBlocked(f"The URL cannot be read: {exc}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetBlocked("The URL must be http:// or https:// with a host.")
    try:
        return resolve_target(parts.hostname, port, resolver)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetBlocked(
            f"{parts.hostname} cannot be resolved ({exc}), so it cannot be checked; "
            "this server blocks private targets.",
            parts.hostname,
        ) from None


class _GuardedConnectionMixin:
    """A urllib3 connection that checks the addresses of its host before it connects."""

    guard_resolver: Resolver | None = None
    guard_blocked: Callable[[str], str | None] = staticmethod(blocked_reason)

    def _new_conn(self):
        name = self._dns_host
        try:
            addresses = resolve_target(name, self.port, self.guard_resolver, self.guard_blocked)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, str(exc)) from exc
        # Connect only to the checked addresses.
        return connect_to_each(self, addresses, super()._new_conn)


class GuardedAdapter(HTTPAdapter):
    """A transport adapter whose connections go only to addresses the block allows."""

    def __init__(
        self,
        resolver: Resolver | None = None,
        blocked: Callable[[str], str | None] = blocked_reason,
        **kwargs,
    ) -> None:
        attrs = {"guard_resolver": staticmethod(resolver) if resolver else None}
        attrs["guard_blocked"] = staticmethod(blocked)
        http = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attrs)
        https = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attrs)
        self._pool_classes = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


def guarded_session(
    resolver: Resolver | None = None, blocked: Callable[[str], str | None] = blocked_reason
) -> requests.Session:
    """A requests.Session for deliveries under the block: refused targets raise TargetBlocked.

    Proxies from the environment are ignored (`trust_env` off): through a proxy the check
    would see the proxy's address, not the target's.
    """
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(resolver, blocked)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
