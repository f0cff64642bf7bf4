"""A stored captured request as the API shows it: a summary, or in full.

Only what arrived is stored (see ../shared/design.md, "Store"); everything here is derived on
read, one function per shape, so a fix to the parsing shows on every request already captured.
"""

from __future__ import annotations

import base64
import json
import re
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder

from hooklab.shared import json_input
from hooklab.shared.clock import iso
from hooklab.shared.signing import SCHEME, verify

# The columns a summary needs: everything but the body, which can be megabytes.
SUMMARY_COLUMNS = (
    "id, bin_id, received_at, method, path, subpath, query_string, headers, http_version, "
    "remote_addr, content_type, body_size, truncated, answered_by"
)
FULL_COLUMNS = SUMMARY_COLUMNS + ", body, forward"
# A Host header we are willing to put in a URL; anything else falls back to the server's address.
SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
# The first Host pair in headers stored in json.dumps' format ('[["Host", "a"], ["X", "b"]]').
# Only structure matches: inside a JSON string every quote is escaped (\"), so '["' cannot.
_HOST_PAIR = re.compile(r'(?:^\[|\], )\["[Hh][Oo][Ss][Tt]", "((?:[^"\\]|\\.)*)"\]')
# Compact and ASCII-only: what the API's jsonify writes (Flask's provider in production).
_compact = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class MultipartError(ValueError):
    """A multipart body that cannot be parsed (no boundary, broken parts)."""


def summary(row: dict, base_url: str, trust_host: bool = True) -> dict:
    """A captured request without its body fields (lists, live stream)."""
    headers = json.loads(row["headers"])
    return {
        "id": row["id"],
        "bin_id": row["bin_id"],
        "received_at": iso(row["received_at"]),
        "method": row["method"],
        "url": request_url(row, headers, base_url, trust_host),
        "path": row["path"],
        "subpath": row["subpath"],
        "query_string": row["query_string"],
        "query": parse_query(row["query_string"]),
        "headers": headers,
        "http_version": row["http_version"],
        "remote_addr": row["remote_addr"],
        "content_type": row["content_type"],
        "body_size": row["body_size"],
        "truncated": bool(row["truncated"]),
        "answered_by": json.loads(row["answered_by"]) if row.get("answered_by") else None,
    }


def full(
    row: dict, bin_row: dict, base_url: str, trust_host: bool = True, body_limit: int | None = None
) -> dict:
    """A captured request in full: the summary plus body, JSON, form, files and signature.

    `body_limit`: a body longer than that many bytes comes as its start only (`body_cut`
    true, `json` null, each form value cut as well; `body_size`, files and signature are still
    the whole body's),
    so a page showing a 10 MiB request does not read it three times over.
    """
    body: bytes = row["body"] or b""
    out = summary(row, base_url, trust_host)
    cut = body_limit is not None and len(body) > body_limit
    shown = _start_of(body, body_limit) if cut else body
    out["body_text"] = body_text(shown)
    out["body_base64"] = base64.b64encode(shown).decode("ascii")
    out["body_cut"] = cut
    out["json"] = None if cut else parse_json(body)
    form, files = parse_form(row["content_type"], body)
    if cut and form:  # a 9 MiB field would come whole otherwise: its start, as the body's
        form = {name: [value[:body_limit] for value in values] for name, values in form.items()}
    out["form"] = form
    out["files"] = [file_info(f) for f in files]
    out["signature"] = signature(
        bin_row, out["headers"], body, bool(row["truncated"]), row["received_at"]
    )
    # What the app answered when the bin forwards (null: not forwarded, or not sent yet).
    out["forward"] = json.loads(row["forward"]) if row.get("forward") else None
    return out


def file_info(file: dict) -> dict:
    """An uploaded file as the API lists it (without its bytes)."""
    return {
        "field": file["field"],
        "filename": file["filename"],
        "content_type": file["content_type"],
        "size": len(file["data"]),
    }


def request_url(row: dict, headers: list, base_url: str, trust_host: bool = True) -> str:
    """The capture URL as the client asked for it: its Host (when sane), path and query."""
    return _url(row, _host_of(headers) if trust_host else None, base_url)


def _host_of(headers: list) -> str | None:
    for name, value in headers:
        if len(name) == 4 and name.lower() == "host":
            return value
    return None


def _url(row: dict, host: str | None, base_url: str) -> str:
    base = base_url.rstrip("/")
    if host and SAFE_HOST.match(host):
        scheme = base.split("://", 1)[0] if "://" in base else "http"
        base = f"{scheme}://{host}"
    url = base + row["path"]
    if row["query_string"]:
        url += "?" + row["query_string"]
    return url


def summaries_json(
    rows: list[dict], base_url: str, trust_host: bool = True, matches: list | None = None
) -> str:
    """`[summary(row) ...]` as the API's JSON (compact, ASCII), each `match` of `matches`
    added: the lists' hot path (`limit=1000`), written in one pass.

    Each row's stored `headers` and `answered_by` go in as the JSON text they are stored as
    (made by bin_server/capture.py with json.dumps), and every other value through the JSON
    encoder's own string function: decoding the stored JSON, building a dict and encoding it
    again took three quarters of a list's time (docs/benchmarks.md). The Host header for the
    URL is read from that text when it is in json.dumps' format, else from it decoded.
    tests/test_summaries.py holds this to `summary()` on hostile headers.
    """
    items = []
    for number, row in enumerate(rows):
        headers = row["headers"]
        host = None
        if trust_host:
            found = _HOST_PAIR.search(headers)
            # As stored (an escape's backslash makes no sane Host either); with no Host in
            # json.dumps' format (or another format), the sure way.
            host = found.group(1) if found else _host_of(json.loads(headers))
        query_string = row["query_string"]
        item = (
            f'{{"id":{int(row["id"])},"bin_id":{_text(row["bin_id"])},'
            f'"received_at":{_text(iso(row["received_at"]))},"method":{_text(row["method"])},'
            f'"url":{_text(_url(row, host, base_url))},"path":{_text(row["path"])},'
            f'"subpath":{_text(row["subpath"])},"query_string":{_text(query_string)},'
            f'"query":{_compact(parse_query(query_string)) if query_string else "{}"},'
            f'"headers":{headers},"http_version":{_text(row["http_version"])},'
            f'"remote_addr":{_text(row["remote_addr"])},'
            f'"content_type":{_text(row["content_type"])},"body_size":{int(row["body_size"])},'
            f'"truncated":{"true" if row["truncated"] else "false"},'
            f'"answered_by":{row.get("answered_by") or "null"}'
        )
        if matches is not None:
            item += ',"match":' + _compact(matches[number])
        items.append(item + "}")
    return "[" + ",".join(items) + "]"


def _text(value: str | None) -> str:
    """A string (or None) as JSON, escaped to ASCII."""
    return "null" if value is None else encode_basestring_ascii(value)


def parse_query(query_string: str) -> dict[str, list[str]]:
    """The query string as name → list of values, in order, blank values kept."""
    out: dict[str, list[str]] = {}
    if not query_string:  # most captures: no query (a list of 1,000 asks 1,000 times)
        return out
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def _start_of(body: bytes, limit: int) -> bytes:
    """The first `limit` bytes, less a UTF-8 character cut in two at the end (so that text
    stays text)."""
    start = body[:limit]
    for back in range(1, 4):
        if len(start) >= back and start[-back] & 0xC0 == 0xC0:  # a lead byte `back` from the end
            needed = 2 if start[-back] < 0xE0 else 3 if start[-back] < 0xF0 else 4
            return start[:-back] if needed > back else start
        if len(start) < back or start[-back] & 0xC0 != 0x80:
            break  # ASCII: nothing cut
    return start


def body_text(body: bytes) -> str | None:
    """The body as text when it is valid UTF-8, else None."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_json(body: bytes) -> Any:
    """The body parsed as JSON when it is UTF-8 JSON (whatever its Content-Type), else None."""
    text = body_text(body)
    # Only UTF-8 (RFC 8259): json.loads would also guess UTF-16/32 from bytes. A BOM is ignored.
    if text is None or not text.strip():
        return None
    try:
        return json_input.loads(text.removeprefix("\ufeff"))  # no NaN, no 1e400 (not JSON)
    except (ValueError, RecursionError):
        return None


def parse_form(content_type: str | None, body: bytes) -> tuple[dict | None, list[dict]]:
    """Form fields (name → list of values) and uploaded files of a form body.

    The fields are None when the body is not a form; a form that cannot be parsed has no fields.
    Each file is {"field", "filename", "content_type", "data"}, in the order they arrived.
    """
    mimetype, options = parse_options_header(content_type or "")
    if mimetype not in FORM_TYPES:
        return None, []
    if mimetype == "application/x-www-form-urlencoded":
        return parse_query(body.decode("utf-8", "replace")), []
    try:
        return parse_multipart(body, options.get("boundary", ""))
    except MultipartError:
        return {}, []


def parse_multipart(body: bytes, boundary: str) -> tuple[dict, list[dict]]:
    """Parse a multipart/form-data body in memory (never through the filesystem)."""
    if not boundary:
        raise MultipartError("no boundary in the Content-Type")
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"))
    fields: dict[str, list[str]] = {}
    files: list[dict] = []
    part: Field | File | None = None
    chunks: list[bytes] = []
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        while True:
            event = decoder.next_event()
            if isinstance(event, Epilogue):
                break
            if isinstance(event, (Field, File)):
                part, chunks = event, []
            elif isinstance(event, Data) and part is not None:
                chunks.append(event.data)
                if event.more_data:
                    continue
                data = b"".join(chunks)
                name = part.name or ""
                if isinstance(part, File):
                    files.append(
                        {
                            "field": name,
                            "filename": part.filename,
                            "content_type": part.headers.get("content-type"),
                            "data": data,
                        }
                    )
                else:
                    fields.setdefault(name, []).append(data.decode("utf-8", "replace"))
                part = None
    except ValueError as exc:
        raise MultipartError(str(exc)) from None
    return fields, files


def signature(
    bin_row: dict, headers: list, body: bytes, truncated: bool, received_at_ms: int | None = None
) -> dict | None:
    """The Standard Webhooks signature check against the bin's secret (None without a secret)."""
    secret = bin_row.get("secret")
    if not secret:
        return None
    if truncated:
        return {
            "scheme": SCHEME,
            "valid": False,
            "reason": "the body was over the size limit and was not kept",
        }
    received_at_s = received_at_ms / 1000 if received_at_ms is not None else None
    valid, reason = verify(secret, dict(headers), body, received_at_s)
    return {"scheme": SCHEME, "valid": valid, "reason": reason}
