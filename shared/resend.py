"""Sending a captured request again (replay, forward): which of its headers go with it."""

from __future__ import annotations

import requests
from urllib3.util import SKIP_HEADER

# Hop-by-hop headers belong to one connection, not to the request: never passed on.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Not re-sent: the hop-by-hop ones, and Host and Content-Length describe the new request, so
# the HTTP library computes them again (Expect: the body is sent whole anyway).
NOT_RESENT = HOP_BY_HOP | {"expect", "host", "content-length"}


def resent_pairs(headers: list[list[str]]) -> list[list[str]]:
    """The captured headers that are sent again, in order: less hop-by-hop, Host and length."""
    named_in_connection = set()
    for name, value in headers:
        if name.lower() == "connection":
            named_in_connection |= {p.strip().lower() for p in value.split(",")}
    return [
        [name, value]
        for name, value in headers
        if name.lower() not in NOT_RESENT and name.lower() not in named_in_connection
    ]


def resend_headers(headers: list[list[str]]) -> dict[str, str]:
    """The headers to pass to requests: `resent_pairs`, repeated names joined, nothing added."""
    out: dict[str, str] = {}
    for name, value in resent_pairs(headers):
        out[name] = f"{out[name]}, {value}" if name in out else value
    # urllib3 adds a User-Agent and Accept-Encoding of its own unless told to skip them.
    present = {name.lower() for name in out}
    for name in ("User-Agent", "Accept-Encoding"):
        if name.lower() not in present:
            out[name] = SKIP_HEADER
    return out


def with_subpath(url: str, subpath: str) -> str:
    """`url` with a captured request's subpath after it (a forward's or replay's `with_path`).

    Its `.` and `..` segments are sent as they came, percent-encoded: an HTTP library would
    resolve them against `url` first, and a captured `/../../admin` would reach above the
    app's URL (`http://app/hooks` + `/../../admin` is `http://app/admin`).

    A subpath always goes after a `/` of its own: without one, `%2F@evil:80/x` appended to
    `http://app:5000` would be read as `app:5000%2F` userinfo and host `evil:80`; and `?` or
    `#` in it (never in a captured path, which the server split at `?`) are encoded, so the
    result's scheme and host are always `url`'s.
    """
    if not subpath:
        return url
    if not subpath.startswith("/"):
        subpath = "/" + subpath
    subpath = subpath.replace("?", "%3F").replace("#", "%23")
    segments = ["%2E" * len(part) if part in (".", "..") else part for part in subpath.split("/")]
    return url.rstrip("/") + "/".join(segments)


def send_as_captured(
    session: requests.Session,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout: float,
) -> requests.Response:
    """`session.request`, streamed and without redirects, but with the method as given: requests
    upper-cases it (`prepare_method`), and a captured `get` or `PuRgE` is sent again as it came
    (HTTP methods are case-sensitive)."""
    prepared = session.prepare_request(requests.Request(method, url, data=body, headers=headers))
    prepared.method = method
    settings = session.merge_environment_settings(prepared.url, {}, True, None, None)
    return session.send(prepared, timeout=timeout, allow_redirects=False, **settings)
