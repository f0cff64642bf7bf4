"""The bin's JSON API (see ../shared/design.md, "Bin (capture side)")."""

from __future__ import annotations

import io
import socket
import time
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request, send_file, stream_with_context

from hooklab.bin_server import bins, captured, export, replay, search
from hooklab.bin_server.holds import busy_message, thread_holds
from hooklab.shared import json_input
from hooklab.shared.context import get_notifier, get_settings, get_stopping, get_store
from hooklab.shared.errors import ApiError, json_error
from hooklab.shared.own_server import this_server
from hooklab.shared.params import path_number, query_int, query_seconds, refuse_unknown_params
from hooklab.shared.store import MAX_ROW_ID, row, row_id

bp = Blueprint("bin_api", __name__)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
LIST_PARAMS = ("after", "before", "limit", "q", "method", "path")  # of GET …/requests
DEFAULT_WAIT_S = 30.0
MAX_BATCH_BINS = 100  # bins created or deleted by one call
# A long poll re-reads the store at least this often, so captures by another process are seen.
WAIT_POLL_S = 0.5


# -- helpers ------------------------------------------------------------------------------------


def base_url() -> str:
    """The base of capture and inspector URLs: the public URL when set, else this request's."""
    return get_settings().public_url or request.host_url


def _trust_host() -> bool:
    # Behind a configured public URL the Host a client sent may be an internal name.
    return not get_settings().public_url


def _json_body() -> dict:
    """The request body as a JSON object (an empty body is an empty object)."""
    return json_input.request_json(empty={})


def _bin_fields() -> dict:
    """The columns of a create or change request, all checked (422 naming a bad field)."""
    settings = get_settings()
    data = _json_body()
    # Only a forward needs this server's addresses (and working them out is not free).
    server = this_server(settings) if "forward" in data else None
    return bins.validate_bin_fields(
        data, settings.max_delay_ms, server, settings.block_private_targets
    )


def _bin_json(row: dict) -> dict:
    stats = bins.bin_stats(get_store(), [row["id"]])[row["id"]]
    return bins.bin_to_json(row, base_url(), stats)


def request_id_in_path(text: str) -> str:
    """The captured request id of a route's path (see `path_number`)."""
    return path_number(text, "request id", "request_id")


def _get_request_row(bin_id: str, request_id: int | str) -> dict:
    """A stored captured request of this bin, body included, or a 404.

    `request_id` is an int, or the digits of a URL path (`request_id_in_path`).
    """
    number = row_id(request_id)
    found = None
    if number is not None:
        found = row(
            get_store().conn,
            f"SELECT {captured.FULL_COLUMNS} FROM captured_requests WHERE id = ? AND bin_id = ?",  # noqa: S608 (fixed column list)
            (number, bin_id),
        )
    if found is None:
        shown = str(request_id) if len(str(request_id)) <= 40 else str(request_id)[:40] + "…"
        raise ApiError(404, "request_not_found", f"No captured request {shown} in bin {bin_id!r}.")
    return found


def _full(row: dict, bin_row: dict, body_limit: int | None = None) -> dict:
    body = captured.full(row, bin_row, base_url(), _trust_host(), body_limit)
    body["replays"] = replay.replays_of(get_store().conn, row["id"])
    return body


def _changed(bin_id: str) -> None:
    # Wake live streams and this bin's long polls, in this process.
    get_notifier().changed(bin_id)


# -- bins ---------------------------------------------------------------------------------------


@bp.post("/api/bins")
def create_bin():
    """Create a bin: `{"name"?, "response"?, "secret"?, "rules"?, "rules_seed"?, "forward"?}`."""
    columns = _bin_fields()
    row = bins.create_bin(get_store(), columns)
    _changed(row["id"])
    body = bins.bin_to_json(row, base_url(), (0, None))
    return jsonify(body), 201, {"Location": f"/api/bins/{row['id']}"}


@bp.post("/api/bins/batch")
def create_bins():
    """Create `?count=` bins alike (1 to 100), each from the body of `POST /api/bins`.

    One transaction for all of them: for a test suite that keeps bins ready (the pytest fixture).
    """
    count = query_int("count", None, 1, MAX_BATCH_BINS)
    if count is None:
        raise ApiError(400, "bad_request", f"count is required (1 to {MAX_BATCH_BINS}).", "count")
    made = bins.create_bins(get_store(), _bin_fields(), count)
    _changed(made[0]["id"])  # nothing waits on a new bin: one wake-up for the live pages, as one
    url = base_url()
    return jsonify({"bins": [bins.bin_to_json(bin_row, url, (0, None)) for bin_row in made]}), 201


@bp.delete("/api/bins")
def delete_bins():
    """Delete the bins of `?ids=a,b,…` (1 to 100) and what they captured, in one transaction.

    Ids of no bin are no error (the bin may be gone already): the answer lists what was deleted.
    """
    text = request.args.get("ids", "")
    ids = [part.strip() for part in text.split(",") if part.strip()] if len(text) < 4000 else []
    if not 1 <= len(ids) <= MAX_BATCH_BINS:
        raise ApiError(
            400,
            "bad_request",
            f"ids must list 1 to {MAX_BATCH_BINS} bin ids, comma-separated.",
            "ids",
        )
    bad = next((bin_id for bin_id in ids if not bins.looks_like_bin_id(bin_id)), None)
    if bad is not None:
        raise ApiError(400, "bad_request", f"{bad[:40]!r} is not a bin id.", "ids")
    unique = list(dict.fromkeys(ids))
    deleted = bins.delete_bins(get_store(), unique)
    for bin_id in deleted:
        _changed(bin_id)  # its long polls answer 404, its live pages say bin_deleted
    return jsonify({"deleted": deleted, "not_found": [i for i in unique if i not in deleted]})


@bp.get("/api/bins")
def list_bins():
    """Every bin, newest first, with its request count and last request time."""
    return jsonify(bins.list_bins(get_store(), base_url()))


@bp.get("/api/bins/<bin_id>")
def read_bin(bin_id: str):
    """One bin."""
    return jsonify(_bin_json(bins.require_bin(get_store(), bin_id)))


@bp.patch("/api/bins/<bin_id>")
def change_bin(bin_id: str):
    """Change a bin's name, response, secret, rules or forward (only the fields given)."""
    store = get_store()
    bins.require_bin(store, bin_id)
    columns = _bin_fields()
    row = bins.update_bin(store, bin_id, columns)
    _changed(bin_id)
    return jsonify(_bin_json(row))


@bp.post("/api/bins/<bin_id>/rules/reset")
def reset_rules(bin_id: str):
    """Start the counts of a bin's rules, and its seeded sequence, again."""
    store = get_store()
    bins.require_bin(store, bin_id)
    json_input.refuse_fields("a reset")
    row = bins.reset_rules(store, bin_id)
    _changed(bin_id)
    return jsonify(_bin_json(row))


@bp.delete("/api/bins/<bin_id>")
def delete_bin(bin_id: str):
    """Delete a bin and everything it captured."""
    store = get_store()
    bins.require_bin(store, bin_id)
    bins.delete_bin(store, bin_id)
    _changed(bin_id)
    return "", 204


# -- captured requests --------------------------------------------------------------------------


@bp.get("/api/bins/<bin_id>/requests")
def list_requests(bin_id: str):
    """Summaries of captured requests, newest first; `after`, `before` (ids) and `limit`.

    Search (../shared/design.md, "Search"): `q` (words, prefixes, "a phrase"), `method`, and
    `path` (a glob on the subpath). With `q`, each summary says where it matched (`match`).
    """
    store = get_store()
    bins.require_bin(store, bin_id)
    refuse_unknown_params(LIST_PARAMS)
    after = query_int("after", 0, 0, MAX_ROW_ID)
    before = query_int("before", MAX_ROW_ID, 0, MAX_ROW_ID)
    limit = query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    q = request.args.get("q", "").strip()
    method = request.args.get("method", "").strip()
    path = request.args.get("path", "").strip()
    found = search.find(
        store.conn,
        bin_id,
        q=q,
        method=method,
        path_filter=search.path_filter(path) if path else None,
        after=after,
        before=before,
        limit=limit,
    )
    matches = None
    if q and found:
        bodies = dict(
            store.conn.execute(
                "SELECT id, body FROM captured_requests WHERE id IN "  # noqa: S608 (marks only)
                f"({', '.join('?' * len(found))})",
                [r["id"] for r in found],
            ).fetchall()
        )
        matches = [search.snippet({**r, "body": bodies.get(r["id"])}, q) for r in found]
    text = captured.summaries_json(found, base_url(), _trust_host(), matches)
    response = current_app.response_class(text + "\n", mimetype="application/json")
    if len(found) == limit:
        # A full page: the next, older one (newest first, so `after` alone would skip the
        # requests between it and this page's oldest).
        query = {**request.args.to_dict(), "limit": limit, "before": found[-1]["id"]}
        response.headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return response


@bp.delete("/api/bins/<bin_id>/requests")
def clear_requests(bin_id: str):
    """Delete every captured request of a bin (the bin stays)."""
    store = get_store()
    bins.require_bin(store, bin_id)
    bins.clear_bin(store, bin_id)
    _changed(bin_id)
    return "", 204


# A captured request's id (and a file's index) is taken as text and checked by
# `request_id_in_path`: with `<int:…>` any other text got the router's bare "not found", and
# `\d` also matched other scripts' digits ("١" was request 1).
@bp.get("/api/bins/<bin_id>/requests/<request_id>")
def read_request(bin_id: str, request_id: str):
    """One captured request in full (`body_limit`: at most that many bytes of the body)."""
    request_id = request_id_in_path(request_id)
    bin_row = bins.require_bin(get_store(), bin_id)
    body_limit = query_int("body_limit", None, 0, MAX_ROW_ID)
    return jsonify(_full(_get_request_row(bin_id, request_id), bin_row, body_limit))


@bp.get("/api/bins/<bin_id>/requests/<request_id>/raw")
def raw_body(bin_id: str, request_id: str):
    """The body bytes exactly as received, as a download (never rendered by a browser)."""
    request_id = request_id_in_path(request_id)
    bins.require_bin(get_store(), bin_id)
    row = _get_request_row(bin_id, request_id)
    response = Response(row["body"] or b"", mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = f'attachment; filename="request-{row["id"]}.bin"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Hooklab-Truncated"] = "true" if row["truncated"] else "false"
    return response


@bp.get("/api/bins/<bin_id>/requests/<request_id>/files/<index>")
def download_file(bin_id: str, request_id: str, index: str):
    """One file uploaded in a multipart body (index as in the request's `files`)."""
    request_id = request_id_in_path(request_id)
    index = path_number(index, "file index", "index")
    bins.require_bin(get_store(), bin_id)
    row = _get_request_row(bin_id, request_id)
    _, files = captured.parse_form(row["content_type"], row["body"] or b"")
    if len(index) > 30 or int(index) >= len(files):
        shown = index if len(index) <= 40 else index[:40] + "…"
        raise ApiError(404, "file_not_found", f"Captured request {row['id']} has no file {shown}.")
    file = files[int(index)]
    response = send_file(
        io.BytesIO(file["data"]),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=export.safe_filename(file["filename"], f"file-{int(index)}"),
        etag=False,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/api/bins/<bin_id>/requests/wait")
def wait_for_request(bin_id: str):
    """Long poll: the oldest request newer than `after` matching `method` and `path`, or 204.

    A client that closes its connection meanwhile stops the wait (within WAIT_POLL_S).
    """
    store, settings = get_store(), get_settings()
    bin_row = bins.require_bin(store, bin_id)
    after = query_int("after", 0, 0, MAX_ROW_ID)
    timeout = query_seconds("timeout", DEFAULT_WAIT_S, settings.wait_max_s)
    method = request.args.get("method", "").strip().upper()
    path = request.args.get("path", "").strip()

    holds = thread_holds(store, settings)
    if not holds.enter():  # the poll would hold a thread the captures it waits for need
        # What has arrived already is answered without waiting, so without a place to wait;
        # so is a look that asked not to wait (timeout=0). Only a wait itself is refused.
        answer = _wait(store, bin_id, bin_row, after, 0, method, path)
        if timeout == 0 or not isinstance(answer, tuple):
            return answer
        busy = json_error(503, "too_many_waiting", busy_message(holds, "this long poll"))
        busy.headers["Retry-After"] = "1"
        return busy
    try:
        return _wait(store, bin_id, bin_row, after, timeout, method, path)
    finally:
        holds.leave()


def _wait(store, bin_id: str, bin_row: dict, after: int, timeout: float, method: str, path: str):
    deadline = time.monotonic() + timeout
    # Woken by this bin's captures (and by changes naming no bin, like a deletion) only.
    with get_notifier().bell(bin_id) as bell:
        waited = False
        while True:
            # Cleared before the store is read, so a capture landing in between still wakes us.
            bell.clear()
            if method or path:
                found, after = _find_match(bin_id, after, method, path)
                found_row = _get_request_row(bin_id, found) if found is not None else None
            else:  # the first one newer than `after`, read in one query
                found_row = row(
                    store.conn,
                    f"SELECT {captured.FULL_COLUMNS} FROM captured_requests "  # noqa: S608 (fixed column list)
                    "WHERE bin_id = ? AND id > ? ORDER BY id LIMIT 1",
                    (bin_id, after),
                )
            if found_row is not None:
                return jsonify(_full(found_row, bin_row))
            if waited:  # and nothing came: why not, before waiting again
                if client_gone(request.environ):
                    return "", 204  # nobody reads it: the thread is free again at once
                if bins.get_bin_row(store, bin_id) is None:
                    raise ApiError(
                        404, "bin_not_found", f"Bin {bin_id!r} was deleted while waiting."
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0 or get_stopping().is_set():  # the server is stopping: answer now
                return "", 204
            bell.wait(min(WAIT_POLL_S, remaining))
            waited = True


def client_gone(environ: dict) -> bool:
    """Whether the client closed its connection (a long poll given up holds no thread).

    Readable with nothing to read is the client's end of the connection; bytes waiting (a
    pipelined request) are not. Only under a server that shows the socket (gunicorn, Werkzeug).
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None or not hasattr(socket, "MSG_DONTWAIT"):  # (Windows has no MSG_DONTWAIT)
        return False
    try:
        return not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False  # nothing to read: the client is waiting
    except (OSError, ValueError):
        return True  # reset, or closed already


def _find_match(bin_id: str, after: int, method: str, path: str) -> tuple[int | None, int]:
    """The id of the oldest matching request after `after`, and the cursor to resume from."""
    conn = get_store().conn
    path_ok = search.path_filter(path) if path else None
    while True:
        batch = conn.execute(
            "SELECT id, method, subpath FROM captured_requests "
            "WHERE bin_id = ? AND id > ? ORDER BY id LIMIT 500",
            (bin_id, after),
        ).fetchall()
        if not batch:
            return None, after
        for request_id, req_method, subpath in batch:
            if (not method or req_method.upper() == method) and (
                path_ok is None or path_ok(subpath)
            ):
                return request_id, after
            # Ids only grow, so a request that did not match never needs looking at again.
            after = request_id


# -- replay -------------------------------------------------------------------------------------


@bp.post("/api/bins/<bin_id>/requests/<request_id>/replay")
def replay_request(bin_id: str, request_id: str):
    """Send a captured request again, maybe edited and re-signed; 200 with the answer.

    `{"url", "method"?, "headers"?, "body"? | "body_base64"?, "with_path"?, "resign"?}`
    (../shared/design.md, "Replay with edits"); the replay is kept in the request's `replays`.
    """
    request_id = request_id_in_path(request_id)
    store, settings = get_store(), get_settings()
    bins.require_bin(store, bin_id)
    captured_row = _get_request_row(bin_id, request_id)
    plan = replay.plan(_json_body(), captured_row, this_server(get_settings()))
    answer = replay.send(
        plan, settings.default_timeout_s, settings.response_body_cap, settings.block_private_targets
    )
    replay.record(store, captured_row["id"], plan, answer)
    _changed(bin_id)
    return jsonify(answer)


@bp.post("/api/bins/<bin_id>/requests/<request_id>/replays")
def report_replay(bin_id: str, request_id: str):
    """Keep a replay that a client sent itself (an unedited `hooklab replay`); 201 with the entry.

    `{"url", "method", "status_code" | null, "duration_ms", "error"?}`: so every replay is in
    the request's `replays`, whoever sent it (`sent_from`: "server" or "cli").
    """
    request_id = request_id_in_path(request_id)
    store = get_store()
    bins.require_bin(store, bin_id)
    captured_row = _get_request_row(bin_id, request_id)
    entry = replay.record_reported(store, captured_row["id"], _json_body())
    _changed(bin_id)
    return jsonify(entry), 201


# -- export -------------------------------------------------------------------------------------


@bp.get("/api/bins/<bin_id>/export")
def export_bin(bin_id: str):
    """Every kept request of a bin, oldest first, as HAR 1.2 (`format=har`) or JSON."""
    store = get_store()
    bin_row = bins.require_bin(store, bin_id)
    fmt = request.args.get("format", "").strip().lower() or "har"
    if fmt not in export.FORMATS:
        raise ApiError(
            400, "bad_request", f"format must be one of {', '.join(export.FORMATS)}.", "format"
        )
    ids = [
        r[0]
        for r in store.conn.execute(
            "SELECT id FROM captured_requests WHERE bin_id = ? ORDER BY id", (bin_id,)
        )
    ]
    base, trust = base_url(), _trust_host()

    def requests_in_full():
        # One row at a time, so a bin of large bodies never sits in memory whole.
        for request_id in ids:
            try:
                row = _get_request_row(bin_id, request_id)
            except ApiError:
                continue  # evicted or cleared since the export started
            item = captured.full(row, bin_row, base, trust)
            item["replays"] = replay.replays_of(get_store().conn, request_id)
            yield item, row

    chunks = export.render(fmt, bin_row, requests_in_full(), get_settings())
    response = Response(stream_with_context(chunks), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{export.filename(bin_row, fmt)}"'
    )
    return response
