"""Export a bin's captured requests as HAR 1.2 or as a JSON list of requests in full.

Both are streamed one request at a time: a bin may hold a thousand bodies of 10 MiB each.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qsl

from werkzeug.http import parse_cookie

import hooklab.shared
from hooklab.bin_server.capture import configured_response, reason, too_large_message
from hooklab.shared.settings import Settings

FORMATS = ("har", "json")
HAR_VERSION = "1.2"
# Characters never kept in a download name: path separators, quotes, controls.
UNSAFE_NAME = re.compile(r'[\\/"\x00-\x1f\x7f;]')


def render(
    fmt: str, bin_row: dict, requests: Iterable[tuple[dict, dict]], settings: Settings
) -> Iterator[bytes]:
    """The export document in chunks; `requests` yields (request in full, stored row)."""
    if fmt == "har":
        return _har(bin_row, requests, settings)
    return _json_list(requests)


def filename(bin_row: dict, fmt: str) -> str:
    """The download name of an export, e.g. `hooklab-bin-<id>.har`."""
    return f"hooklab-bin-{bin_row['id']}.{fmt}"


def safe_filename(name: str | None, fallback: str) -> str:
    """A captured (hostile) file name made safe to offer as a download name."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # a name is never a path
    name = UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:200] or fallback


def _json_list(requests: Iterable[tuple[dict, dict]]) -> Iterator[bytes]:
    yield b"["
    for n, (item, _) in enumerate(requests):
        yield (b",\n" if n else b"\n") + json.dumps(item).encode()
    yield b"\n]\n"


def _har(
    bin_row: dict, requests: Iterable[tuple[dict, dict]], settings: Settings
) -> Iterator[bytes]:
    head = {
        "version": HAR_VERSION,
        "creator": {"name": "hooklab", "version": hooklab.shared.__version__},
        "comment": f"Requests captured by the Hooklab bin {bin_row['name'] or bin_row['id']}.",
    }
    # Written by hand around the entries so they can stream; the result is one JSON document.
    yield b'{"log": ' + json.dumps(head).encode()[:-1] + b', "entries": ['
    for n, (item, row) in enumerate(requests):
        entry = har_entry(item, bin_row, settings, bool(row["truncated"]))
        yield (b",\n" if n else b"\n") + json.dumps(entry).encode()
    yield b"\n]}}\n"


def har_entry(item: dict, bin_row: dict, settings: Settings, truncated: bool) -> dict:
    """One captured request as a HAR 1.2 entry; the response is what the bin answers."""
    delay = 0 if truncated else min(bin_row["response_delay_ms"] or 0, settings.max_delay_ms)
    return {
        "startedDateTime": item["received_at"],
        "time": delay,
        "request": har_request(item),
        "response": har_response(item, bin_row, settings, truncated),
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "connect": -1,
            "send": 0,
            "wait": delay,
            "receive": 0,
            "ssl": -1,
        },
        # HAR allows custom fields when they start with an underscore.
        "_hooklab": {
            "id": item["id"],
            "bin_id": item["bin_id"],
            "remote_addr": item["remote_addr"],
            "truncated": item["truncated"],
        },
    }


def har_request(item: dict) -> dict:
    """The request part of a HAR entry."""
    # Two Cookie headers reach us joined with a comma (the server joins repeated headers); a
    # comma is never part of a cookie (RFC 6265's cookie-octet), so it separates them too.
    cookie_header = "; ".join(
        v.replace(",", ";") for n, v in item["headers"] if n.lower() == "cookie"
    )
    request = {
        "method": item["method"],
        "url": item["url"],
        "httpVersion": item["http_version"] or "HTTP/1.1",
        "cookies": [
            {"name": name, "value": value}
            for name, value in parse_cookie(cookie_header).items(multi=True)
        ],
        "headers": [{"name": name, "value": value} for name, value in item["headers"]],
        "queryString": [
            {"name": name, "value": value}
            for name, value in parse_qsl(item["query_string"], keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": item["body_size"],
    }
    if item["body_base64"]:
        post = {"mimeType": item["content_type"] or ""}
        if item["body_text"] is not None:
            post["text"] = item["body_text"]
        else:
            post["text"] = item["body_base64"]
            post["encoding"] = "base64"
        request["postData"] = post
    return request


def har_response(item: dict, bin_row: dict, settings: Settings, truncated: bool) -> dict:
    """The response part of a HAR entry: the status the request was answered with (a rule's,
    the 413 of a body too large, your app's through a sync forward, 0 for a dropped
    connection), with the app's headers and body when a forward answered; otherwise the
    bin's configured headers and body as they are now."""
    answered = item.get("answered_by") or {}
    forward = item.get("forward") or {}
    comment = "The status the request was answered with; headers and body as the bin is now."
    if truncated:
        status = 413
        message = too_large_message(settings.max_body_bytes, item["id"])
        body = json.dumps({"error": {"code": "too_large", "message": message}}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += [("Connection", "close"), ("X-Hooklab-Request-Id", str(item["id"]))]
        comment = "The answer to a body over the limit."
    elif answered.get("name") == "forward" and forward.get("status_code") is not None:
        status = forward["status_code"]
        headers = [(name, value) for name, value in forward.get("headers") or []]
        if forward.get("body_base64") is not None:
            body = base64.b64decode(forward["body_base64"])
        else:
            body = (forward.get("body_text") or "").encode()
        comment = "Your app's answer, relayed by the sync forward."
    else:
        status, headers, body = configured_response(bin_row, item["id"])
        if answered.get("status") is not None:
            status = answered["status"]
        elif answered.get("rule") is not None or answered.get("name") == "forward":
            status = 0  # no answer: the rule dropped the connection, or the app failed
            comment = "No answer was sent (the connection was dropped)."
    mime = next((v for n, v in headers if n.lower() == "content-type"), "")
    location = next((v for n, v in headers if n.lower() == "location"), "")
    text = body.decode("utf-8", errors="replace")
    return {
        "status": status,
        "statusText": reason(status) if status else "",
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": name, "value": value} for name, value in headers],
        "content": {"size": len(body), "mimeType": mime, "text": text},
        "redirectURL": location,
        "headersSize": -1,
        "bodySize": len(body),
        "comment": comment,
    }
