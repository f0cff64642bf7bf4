"""The pytest fixture's Housekeeper: ready bins made in batches, long polls sent ahead for the
next ones, finished tests' bins deleted in batches; and `Bin.wait_for` reading those polls."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from hooklab.client.http import WAIT_SLICE_S, Client, Watch
from hooklab.client.pytest_plugin import Hooklab, Housekeeper
from tests.conftest import make_settings, start_live_server
from tests.waiting import wait_for


class RecordingClient(Client):
    """A lean Client noting the Housekeeper's calls as (name, argument), once they are made."""

    def __init__(self, server: str, lean: bool = True, **kwargs: Any) -> None:
        super().__init__(server, lean=lean, **kwargs)
        self.calls: list[tuple[str, Any]] = []
        self.watches: list[Watch] = []
        self.hold_deletions = False  # noted, not sent: no deletion then ends a bin's long poll

    def named(self, name: str) -> list[Any]:
        """The arguments of the calls of one name, in order."""
        return [arg for called, arg in list(self.calls) if called == name]

    def create_bins(self, count: int, **fields: Any) -> list[dict]:
        made = super().create_bins(count, **fields)
        self.calls.append(("create_bins", count))
        return made

    def create_bin(self, **fields: Any) -> dict:
        made = super().create_bin(**fields)
        self.calls.append(("create_bin", made["id"]))
        return made

    def delete_bins(self, bin_ids: list[str]) -> list[str]:
        deleted = list(bin_ids) if self.hold_deletions else super().delete_bins(bin_ids)
        self.calls.append(("delete_bins", list(bin_ids)))
        return deleted

    def delete_bin(self, bin_id: str) -> None:
        super().delete_bin(bin_id)
        self.calls.append(("delete_bin", bin_id))

    def watch(self, bin_id: str, timeout: float = WAIT_SLICE_S) -> Watch | None:
        watch = super().watch(bin_id, timeout)
        self.watches.append(watch)
        self.calls.append(("watch", bin_id))
        return watch


def bin_ids(server_url: str) -> set[str]:
    return {b["id"] for b in requests.get(f"{server_url}/api/bins", timeout=10).json()}


def settle(housekeeper: Housekeeper) -> None:
    """Wait for the round under way (seen started through its calls) to end."""
    assert housekeeper.wait_until_deleted(timeout=10)


# -- ready bins and their watches ----------------------------------------------------------------


def test_the_pool_is_made_in_one_call_and_its_first_bins_watched(live_server):
    recorder = RecordingClient(live_server.url)
    housekeeper = Housekeeper(recorder, pool_size=6, watched=2)
    taken = []
    try:
        assert housekeeper.wait_started(10)
        assert housekeeper.ready() == 6
        made = bin_ids(live_server.url)
        assert len(made) == 6
        assert recorder.named("create_bins") == [6]
        assert recorder.named("create_bin") == []
        watched = recorder.named("watch")
        assert len(watched) == 2 and set(watched) <= made

        taken = [housekeeper.take_bin() for _ in range(3)]
        # Oldest first: the two watched, then one whose poll was not sent.
        assert [bin_json["id"] for bin_json, _ in taken[:2]] == watched
        assert [watch for _, watch in taken] == [*recorder.watches, None]

        # Half taken: the test's end refills the pool in one call and watches the next two.
        housekeeper.between_tests()
        wait_for(lambda: len(recorder.named("watch")) == 4, what="the next bins watched")
        settle(housekeeper)
        assert recorder.named("create_bins") == [6, 3]
        assert housekeeper.ready() == 6
        assert len(bin_ids(live_server.url)) == 9
        taken_ids = {bin_json["id"] for bin_json, _ in taken}
        assert not set(recorder.named("watch")[2:]) & taken_ids
    finally:
        for _, watch in taken:
            if watch is not None:
                watch.close()
        assert housekeeper.close() == 0
    # The ready bins were deleted, in one call; the bins handed out are the tests' business.
    assert bin_ids(live_server.url) == taken_ids
    assert len(recorder.named("delete_bins")) == 1


def test_a_client_that_cannot_watch_sends_no_polls_and_wakes_no_rounds_for_them(live_server):
    # Through requests (a --hooklab-url server): no polls sent ahead, so none is due either.
    recorder = RecordingClient(live_server.url, lean=False)
    housekeeper = Housekeeper(recorder, pool_size=16)  # 3 taken: no refill due
    try:
        assert housekeeper.wait_started(10)
        settle(housekeeper)
        before = list(recorder.calls)
        for _ in range(3):
            made, watch = housekeeper.take_bin()
            assert watch is None
            housekeeper.between_tests()  # a test ended; its bin is not deleted
            settle(housekeeper)
        assert [name for name, _ in recorder.calls] == ["create_bins"]
        assert recorder.calls == before
    finally:
        assert housekeeper.close() == 0


def test_a_test_taking_every_ready_bin_gets_them_made_again(live_server):
    recorder = RecordingClient(live_server.url)
    housekeeper = Housekeeper(recorder, pool_size=2, watched=0)
    try:
        assert housekeeper.wait_started(10)
        assert housekeeper.take_bin() is not None and housekeeper.take_bin() is not None
        assert housekeeper.take_bin() is None  # none ready: the test makes its own; refilled
        wait_for(lambda: housekeeper.ready() == 2, what="the pool refilled")
        assert recorder.named("create_bins") == [2, 2]
        assert recorder.named("watch") == []  # watched=0: no polls sent ahead
    finally:
        assert housekeeper.close() == 0


def test_a_server_that_answers_a_batch_with_an_error_gets_no_pool_made_one_by_one(old_server):
    old_server.batch_status = 500
    housekeeper = Housekeeper(Client(old_server.url, lean=True), pool_size=3)
    try:
        assert housekeeper.wait_started(10)
        assert housekeeper.take_bin() is None
        assert old_server.requests() == [("POST", "/api/bins/batch?count=3")]
    finally:
        assert housekeeper.close() == 0


# -- deleting finished tests' bins -------------------------------------------------------------


def make_bins(server_url: str, count: int) -> list[str]:
    client = Client(server_url)
    try:
        made = []
        while len(made) < count:
            made += [b["id"] for b in client.create_bins(min(100, count - len(made)))]
        return made
    finally:
        client.close()


def test_finished_tests_bins_are_deleted_a_batch_at_a_time(live_server):
    doomed = make_bins(live_server.url, 5)
    recorder = RecordingClient(live_server.url)
    housekeeper = Housekeeper(recorder, pool_size=0, delete_batch=3)
    try:
        assert housekeeper.wait_started(10)
        housekeeper.delete_later(doomed[:2])
        housekeeper.between_tests()  # fewer than a batch: they wait for more
        housekeeper.delete_later(doomed[2:3])
        housekeeper.between_tests()
        wait_for(lambda: recorder.named("delete_bins"), what="a batch deleted")
        settle(housekeeper)
        assert recorder.named("delete_bins") == [doomed[:3]]
        assert bin_ids(live_server.url) == set(doomed[3:])

        # Asked for, the rest go at once, below a batch.
        housekeeper.delete_later(doomed[3:])
        assert housekeeper.wait_until_deleted(10)
        assert recorder.named("delete_bins") == [doomed[:3], doomed[3:]]
        assert bin_ids(live_server.url) == set()
        assert recorder.named("delete_bin") == []
    finally:
        assert housekeeper.close() == 0


def test_more_than_100_bins_are_deleted_100_per_call(live_server):
    doomed = make_bins(live_server.url, 150)
    recorder = RecordingClient(live_server.url)
    housekeeper = Housekeeper(recorder, pool_size=0)
    try:
        assert housekeeper.wait_started(10)
        housekeeper.delete_later(doomed)
        assert housekeeper.wait_until_deleted(30)
        assert recorder.named("delete_bins") == [doomed[:100], doomed[100:]]
        assert bin_ids(live_server.url) == set()
    finally:
        assert housekeeper.close() == 0


def test_close_deletes_the_ready_bins_with_the_rest_and_closes_their_watches(live_server):
    [left] = make_bins(live_server.url, 1)
    recorder = RecordingClient(live_server.url)
    housekeeper = Housekeeper(recorder, pool_size=4, watched=2)
    assert housekeeper.wait_started(10)
    ready = bin_ids(live_server.url) - {left}
    housekeeper.delete_later([left])
    assert housekeeper.close() == 0
    assert bin_ids(live_server.url) == set()
    [deleted] = recorder.named("delete_bins")
    assert deleted[0] == left and set(deleted[1:]) == ready
    for watch in recorder.watches:
        with pytest.raises(RuntimeError):
            watch.result(1)  # closed: nothing left to read


# -- a server without the batch calls ------------------------------------------------------------


class OldServer(ThreadingHTTPServer):
    """A Hooklab of before the batch calls, in miniature: 404 to POST /api/bins/batch, 405 to
    DELETE /api/bins (a route of GET only there); bins made and deleted one at a time."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), OldHandler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.batch_status = 404
        self.bins: set[str] = set()
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def requests(self, method: str | None = None) -> list[tuple[str, str]]:
        """What was asked for, but the settings and long polls."""
        with self.lock:
            return [
                (m, p)
                for m, p in self.log
                if p != "/api/settings" and "/wait" not in p and method in (None, m)
            ]


class OldHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as the lean Client expects
    server: OldServer

    def answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # a watch closed before its answer: as a real server

    def error(self, status: int, code: str) -> None:
        self.answer(status, {"error": {"code": code, "message": f"{code}."}})

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self.note()
        if self.path == "/api/settings":
            self.answer(200, {"settings": {"bin_ttl_s": {"value": 0}}})
        elif self.path.split("?")[0].endswith("/requests/wait"):
            self.answer(204)  # the wait ended with nothing
        else:
            self.error(404, "not_found")

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.note()
        if self.path.startswith("/api/bins/batch"):
            self.error(self.server.batch_status, "not_found")
        elif self.path == "/api/bins":
            bin_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(26))
            with self.server.lock:
                self.server.bins.add(bin_id)
            self.answer(201, {"id": bin_id, "url": f"{self.server.url}/b/{bin_id}"})
        else:
            self.error(404, "not_found")

    def do_DELETE(self) -> None:  # noqa: N802
        self.note()
        if self.path.startswith("/api/bins?"):
            self.error(405, "method_not_allowed")
        elif self.path.startswith("/api/bins/"):
            with self.server.lock:
                self.server.bins.discard(self.path.rsplit("/", 1)[1])
            self.answer(204)
        else:
            self.error(404, "not_found")

    def note(self) -> None:
        with self.server.lock:
            self.server.log.append((self.command, self.path))

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def old_server() -> Iterator[OldServer]:
    server = OldServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_against_a_server_without_batch_creation_bins_are_made_one_by_one(old_server):
    housekeeper = Housekeeper(Client(old_server.url, lean=True), pool_size=3)
    assert housekeeper.wait_started(10)
    assert housekeeper.ready() == 3
    assert (
        old_server.requests("POST")
        == [("POST", "/api/bins/batch?count=3")] + [("POST", "/api/bins")] * 3
    )
    made = set(old_server.bins)
    assert housekeeper.close() == 0
    # Deleted one by one too, without asking for the batch again.
    assert sorted(old_server.requests("DELETE")) == sorted(
        ("DELETE", f"/api/bins/{bin_id}") for bin_id in made
    )
    assert old_server.bins == set()


def test_against_a_server_without_batch_deletion_bins_are_deleted_one_by_one(old_server):
    client = Client(old_server.url, lean=True)
    doomed = [client.create_bin()["id"] for _ in range(3)]
    client.close()
    housekeeper = Housekeeper(Client(old_server.url, lean=True), pool_size=0)
    try:
        assert housekeeper.wait_started(10)
        housekeeper.delete_later(doomed[:2])
        assert housekeeper.wait_until_deleted(10)
        assert old_server.requests("DELETE") == [
            ("DELETE", f"/api/bins?ids={doomed[0]}%2C{doomed[1]}"),
            ("DELETE", f"/api/bins/{doomed[0]}"),
            ("DELETE", f"/api/bins/{doomed[1]}"),
        ]
        housekeeper.delete_later(doomed[2:])
        assert housekeeper.wait_until_deleted(10)
        assert old_server.requests("DELETE")[3:] == [("DELETE", f"/api/bins/{doomed[2]}")]
        assert old_server.bins == set()
    finally:
        assert housekeeper.close() == 0


# -- Bin.wait_for and the watch of its first request ---------------------------------------------


class Lab:
    """A Hooklab as the fixture makes it: a lean Client, and a Housekeeper with its own."""

    def __init__(self, server_url: str, pool_size: int = 4, watched: int = 2) -> None:
        self.url = server_url
        self.recorder = RecordingClient(server_url)
        self.housekeeper = Housekeeper(self.recorder, pool_size=pool_size, watched=watched)
        assert self.housekeeper.wait_started(10)
        self.client = Client(server_url, lean=True)

    def wait_watched(self, count: int) -> None:
        """Wait until `count` watches were sent and the round that sent them is over."""
        wait_for(lambda: len(self.recorder.named("watch")) >= count, what=f"{count} watches")
        settle(self.housekeeper)

    def test(self) -> Hooklab:
        """What one test gets."""
        return Hooklab(self.url, client=self.client, housekeeper=self.housekeeper)

    def end_test(self, hooklab: Hooklab, keep: bool = False) -> None:
        """What the fixture does at the test's end (`keep`: with --hooklab-keep)."""
        try:
            if not keep:
                hooklab.cleanup()
        finally:
            hooklab._test_ended()

    def close(self) -> None:
        assert self.housekeeper.close() == 0
        self.client.close()


@pytest.fixture
def lab(live_server) -> Iterator[Lab]:
    lab = Lab(live_server.url)
    yield lab
    lab.close()


def watched_bin(lab: Lab, hooklab: Hooklab):
    """A ready bin, whose first request's poll was sent ahead."""
    made = hooklab.create_bin()
    assert made.id in lab.recorder.named("watch")
    return made


def test_wait_for_reads_the_first_request_from_the_watch(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    requests.post(made.url + "/hook", json={"n": 1}, timeout=10)
    found = made.wait_for(timeout=10)
    assert (found.subpath, found.json) == ("/hook", {"n": 1})
    # Read from the watch: the round it starts watches the next ready bin.
    wait_for(lambda: len(lab.recorder.named("watch")) == 3, what="the next bin watched")
    lab.end_test(hooklab)


def test_wait_for_passes_a_watched_request_of_another_method_over(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    requests.get(made.url + "/ping", timeout=10)  # what the watch gets
    requests.post(made.url + "/hook", json={"n": 1}, timeout=10)
    assert made.wait_for(method="POST", timeout=10).subpath == "/hook"
    # Passed over, not taken: still there for a wait_for of its own.
    assert made.wait_for(method="GET", timeout=10).subpath == "/ping"
    lab.end_test(hooklab)


def test_wait_for_a_method_the_watched_request_has(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    requests.put(made.url, data=b"first", timeout=10)
    assert made.wait_for(method="put", timeout=10).body == b"first"
    lab.end_test(hooklab)


def test_wait_for_a_path_asks_the_server_from_the_start(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    for subpath in ("/orders/1", "/users/1", "/orders/2"):
        requests.post(made.url + subpath, timeout=10)
    assert made.wait_for(path="/users/*", timeout=10).subpath == "/users/1"
    assert made.wait_for(path="/orders/*", timeout=10).subpath == "/orders/1"
    assert made.wait_for(path="/orders/*", timeout=10).subpath == "/orders/2"
    lab.end_test(hooklab)


def test_wait_for_json_after_the_watched_request(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    for n in (1, 2):
        requests.post(made.url, json={"n": n}, timeout=10)
    assert made.wait_for(json={"n": 2}, timeout=10).json == {"n": 2}
    assert made.wait_for(json={"n": 1}, timeout=10).json == {"n": 1}
    lab.end_test(hooklab)


def test_wait_for_a_request_still_to_come_on_a_watched_bin(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    with pytest.raises(AssertionError, match="It received no requests."):
        made.wait_for(timeout=0.3)  # the watch gave nothing in time
    requests.post(made.url, json={"late": True}, timeout=10)
    assert made.wait_for(timeout=10).json == {"late": True}
    lab.end_test(hooklab)


def test_clear_drops_the_watch_and_what_it_read(lab):
    hooklab = lab.test()
    made = watched_bin(lab, hooklab)
    requests.post(made.url, json={"n": 1}, timeout=10)  # the watch's answer
    made.clear()
    requests.post(made.url, json={"n": 2}, timeout=10)
    assert made.wait_for(timeout=10).json == {"n": 2}
    lab.end_test(hooklab)


def test_wait_for_cleanup_deletes_every_other_bin_then_the_pool_comes_back(lab):
    earlier = lab.test()
    earlier_bin = earlier.create_bin()
    lab.end_test(earlier)
    hooklab = lab.test()
    mine = hooklab.create_bin()
    ready = bin_ids(lab.url) - {mine.id, earlier_bin.id}
    hooklab.wait_for_cleanup(timeout=10)
    assert bin_ids(lab.url) == {mine.id}
    deleted = [bin_id for batch in lab.recorder.named("delete_bins") for bin_id in batch]
    # (And any the round after the earlier test had started making: it ran meanwhile.)
    assert ready | {earlier_bin.id} <= set(deleted)
    assert mine.id not in deleted
    # None kept ready for the rest of the test: a bin is made when asked for.
    assert hooklab.create_bin().id not in deleted
    assert lab.housekeeper.ready() == 0
    lab.end_test(hooklab)
    wait_for(lambda: lab.housekeeper.ready() == 4, what="the pool made again")


@pytest.mark.parametrize("keep", [False, True], ids=["cleanup", "hooklab-keep"])
def test_a_tests_unread_watch_is_closed_at_its_end(tmp_path, keep):
    # Each unread watch left open would hold one of the server's few threads for 30 s.
    threads = 4
    live = start_live_server(make_settings(tmp_path, threads=threads))
    lab = Lab(live.url, pool_size=4, watched=2)  # its two watches hold two threads
    # A bin's deletion would end its poll too: not what is tested here.
    lab.recorder.hold_deletions = True
    try:
        for ended in range(threads):
            lab.wait_watched(2 + ended)  # each test's end has the next ready bin watched
            hooklab = lab.test()
            watched_bin(lab, hooklab)  # never waited for
            lab.end_test(hooklab, keep)
        # Calls time out well before the watches' 30 s: threads still held would show.
        made = lab.client.create_bin()
        assert requests.post(made["url"], timeout=10).status_code == 200
        assert lab.client.wait(made["id"], timeout=10) is not None
    finally:
        lab.close()
        live.kill()
