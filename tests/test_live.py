"""The websocket live stream, against a real server on a free port with a real websocket client."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager, suppress

import pytest
import requests
import simple_websocket

from hooklab.app.factory import open_store
from hooklab.bin_server import bins
from hooklab.bin_server.capture import CaptureMiddleware
from hooklab.client.http import LiveSocket
from hooklab.shared.notify import Notifier
from hooklab.shared.store import Store


@pytest.fixture
def store(live_server) -> Store:
    return open_store(live_server.db)  # the server's database file, from this process


@pytest.fixture
def bin_row(store) -> dict:
    return bins.create_bin(store, {"name": "live"})


def receive(ws, timeout: float = 5.0) -> dict:
    frame = ws.receive(timeout=timeout)
    assert frame is not None, "no frame arrived in time"
    return json.loads(frame)


@contextmanager
def connect(live_server, bin_id: str, after: int | str | None = None):
    query = "" if after is None else f"?after={after}"
    ws = LiveSocket.connect(f"{live_server.ws_url}/ws/bins/{bin_id}{query}")
    try:
        yield ws
    finally:
        # The server may have closed first; the client's reader thread then races this close.
        with suppress(simple_websocket.ConnectionClosed, OSError):
            ws.close()


def capture(live_server, bin_id: str, path: str = "", session=requests, **kwargs) -> int:
    response = session.post(f"{live_server.url}/b/{bin_id}{path}", timeout=5, **kwargs)
    assert response.status_code == 200
    return int(response.headers["X-Hooklab-Request-Id"])


def test_new_captures_arrive_as_summaries(live_server, bin_row):
    with connect(live_server, bin_row["id"]) as ws:
        rid = capture(live_server, bin_row["id"], "/hooks/x?a=1", json={"hello": "world"})
        frame = receive(ws)
        assert frame["type"] == "request"
        request = frame["request"]
        assert request["id"] == rid
        assert request["method"] == "POST"
        assert request["subpath"] == "/hooks/x"
        assert request["query"] == {"a": ["1"]}
        assert request["body_size"] == len(b'{"hello": "world"}')
        assert "body_base64" not in request  # a summary, not the full request


def test_after_replays_what_arrived_before_connecting(live_server, bin_row):
    ids = [capture(live_server, bin_row["id"], f"/{n}", data=str(n)) for n in range(3)]
    with connect(live_server, bin_row["id"], after=ids[0]) as ws:
        replayed = [receive(ws)["request"]["id"] for _ in range(2)]
        assert replayed == ids[1:]
        later = capture(live_server, bin_row["id"], "/later")
        assert receive(ws)["request"]["id"] == later


def test_no_after_replays_everything_kept_oldest_first(live_server, bin_row):
    ids = [capture(live_server, bin_row["id"], data=str(n)) for n in range(3)]
    with connect(live_server, bin_row["id"]) as ws:
        assert [receive(ws)["request"]["id"] for _ in range(3)] == ids


def test_other_bins_requests_are_not_streamed(live_server, store, bin_row):
    other = bins.create_bin(store, {"name": "other"})
    with connect(live_server, bin_row["id"]) as ws:
        capture(live_server, other["id"])
        mine = capture(live_server, bin_row["id"])
        assert receive(ws)["request"]["id"] == mine


def test_clear_and_delete_are_announced(live_server, store, bin_row):
    with connect(live_server, bin_row["id"]) as ws:
        capture(live_server, bin_row["id"])
        assert receive(ws)["type"] == "request"
        api = f"{live_server.url}/api/bins/{bin_row['id']}"
        assert requests.delete(f"{api}/requests", timeout=5).status_code == 204
        assert receive(ws) == {"type": "cleared"}
        assert requests.delete(api, timeout=5).status_code == 204
        assert receive(ws) == {"type": "bin_deleted"}


def test_capture_by_another_process_is_seen_from_the_store(live_server, bin_row, settings):
    """A second Store and Notifier stand for another process sharing the database file."""
    with connect(live_server, bin_row["id"]) as ws:
        other_process = CaptureMiddleware(None, open_store(settings.db), settings, Notifier())
        environ = {
            "PATH_INFO": f"/b/{bin_row['id']}/elsewhere",
            "REQUEST_METHOD": "PUT",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_LENGTH": "2",
            "wsgi.input": io.BytesIO(b"hi"),
        }
        other_process(environ, lambda status, headers: None)
        request = receive(ws)["request"]
        assert (request["method"], request["subpath"]) == ("PUT", "/elsewhere")


@pytest.mark.parametrize(
    ("bin_id", "after", "code"),
    [("aaaaaaaaaaaaaaaaaaaaaaaaaa", None, "bin_not_found"), ("nope", None, "bin_not_found")],
)
def test_unknown_bin_gets_an_error_frame(live_server, bin_id, after, code):
    with connect(live_server, bin_id, after) as ws:
        frame = receive(ws)
        assert frame["type"] == "error"
        assert frame["error"]["code"] == code


@pytest.mark.parametrize(
    "after", ["-1", "ten", str(2**63), "18446744073709551616", "1e3", "%D9%A3", "%00"]
)
def test_bad_after_gets_an_error_frame(live_server, bin_row, after):
    with connect(live_server, bin_row["id"], after) as ws:
        frame = receive(ws)
        assert frame["error"]["code"] == "bad_request"


def test_subscribers_share_a_feed_and_late_ones_replay_from_further_back(live_server, bin_row):
    """The shared feed keeps only the newest frames; a subscriber from further back reads them."""
    from hooklab.bin_server.live import BinFeed

    count = BinFeed.KEEP + 3  # the feed forgets the first three
    with connect(live_server, bin_row["id"]) as first:
        with requests.Session() as session:
            ids = [
                capture(live_server, bin_row["id"], data=str(n), session=session)
                for n in range(count)
            ]
        assert [receive(first)["request"]["id"] for _ in ids] == ids
        with (
            connect(live_server, bin_row["id"], after=0) as late,
            connect(live_server, bin_row["id"], after=ids[2]) as recent,
        ):
            assert [receive(late)["request"]["id"] for _ in ids] == ids
            assert [receive(recent)["request"]["id"] for _ in ids[3:]] == ids[3:]
            newest = capture(live_server, bin_row["id"])
            for ws in (first, late, recent):
                assert receive(ws)["request"]["id"] == newest


@pytest.mark.parametrize("after", ["18446744073709551616", str(2**63 - 1)])
def test_one_subscribers_cursor_never_poisons_the_shared_feed(live_server, after):
    """A cursor past every id (or past what SQLite holds) is that client's alone."""
    bin_row = live_server.create_bin(name="shared")
    with connect(live_server, bin_row["id"]) as healthy:
        first = capture(live_server, bin_row["id"], data="1")
        assert receive(healthy)["request"]["id"] == first
        with connect(live_server, bin_row["id"], after=after) as odd:
            if int(after) > 2**63 - 1:
                frame = receive(odd)
                assert frame["type"] == "error" and frame["error"]["code"] == "bad_request"
            second = capture(live_server, bin_row["id"], data="2")
            assert receive(healthy)["request"]["id"] == second
        # And a subscriber joining afterwards, from the start, still gets everything.
        with connect(live_server, bin_row["id"], after=0) as late:
            assert [receive(late)["request"]["id"] for _ in range(2)] == [first, second]
        third = capture(live_server, bin_row["id"], data="3")
        assert receive(healthy)["request"]["id"] == third


def test_a_far_cursor_does_not_move_the_shared_feed(app, client):
    """The feed starts from the newest stored id, not from its first subscriber's cursor.

    Else a subscriber asking for ids past every one would push the shared frames out of
    reach, and every other subscriber would fall back to reading the store on its own.
    """
    from hooklab.bin_server.live import BinFeed

    store = app.extensions["hooklab.store"]
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    first = int(client.post(f"/b/{bin_id}").headers["X-Hooklab-Request-Id"])
    feed = BinFeed(bin_id, "http://localhost/", True)
    assert feed.poll(store, 2**62, seen=0)[1] == []
    assert (feed.floor, feed.high) == (first, first)
    new = int(client.post(f"/b/{bin_id}").headers["X-Hooklab-Request-Id"])
    _, frames = feed.poll(store, first, seen=1)
    assert [request_id for request_id, _ in frames] == [new]
    assert first >= feed.floor  # served from the shared frames, not a replay of its own
