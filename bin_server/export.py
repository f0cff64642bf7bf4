"""Export a bin's captured requests as HAR 1.2 or as a JSON list of requests in full.

Both are streamed one request at a time: a bin may hold a thousand bodies of 10 MiB each.
"""

from __future__ import annotations

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
    cookie_header = "; ".join(v for n, v in item["headers"] if n.lower() == "cookie")
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
    """The response part of a HAR entry: the bin's configured response (as it is now)."""
    if truncated:
        status = 413
        message = too_large_message(settings.max_body_bytes, item["id"])
        body = json.dumps({"error": {"code": "too_large", "message": message}}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        headers += [("Connection", "close"), ("X-Hooklab-Request-Id", str(item["id"]))]
    else:
        status, headers, body = configured_response(bin_row, item["id"])
    mime = next((v for n, v in headers if n.lower() == "content-type"), "")
    location = next((v for n, v in headers if n.lower() == "location"), "")
    return {
        "status": status,
        "statusText": reason(status),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": name, "value": value} for name, value in headers],
        "content": {"size": len(body), "mimeType": mime, "text": body.decode("utf-8")},
        "redirectURL": location,
        "headersSize": -1,
        "bodySize": len(body),
        "comment": "The bin's configured response at the time of the export.",
    }
