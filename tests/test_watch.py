"""`Client.watch`: a long poll for a bin's first request sent ahead, on a kept-alive connection
of its own that serves the Client's next Watch once its answer is read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from hooklab.client.http import MAX_SPARE, Client, HooklabError
from tests.conftest import LiveServer, make_settings, start_live_server

MISSING_BIN = "a" * 26


class Relay:
    """A TCP relay on 127.0.0.1 in front of a server: counts the connections made to it, and
    `cut_next()` closes the connection of the next request sent, as a server that closed a
    kept-alive connection just as a request was on its way."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target: int | None = None  # the server's port, set once it is started
        self.connections = 0
        self._cut = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_next(self) -> None:
        self._cut.set()

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            assert self.target is not None
            far = socket.create_connection(("127.0.0.1", self.target), timeout=60)
            self._sockets += [near, far]
            threading.Thread(target=self._pipe, args=(near, far, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(far, near, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client and self._cut.is_set():
                    self._cut.clear()
                    break  # the request is lost: both ends are closed
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv
                except OSError:
                    pass
            src.close()


@pytest.fixture
def relay() -> Iterator[Relay]:
    relay = Relay()
    yield relay
    relay.close()


@pytest.fixture
def relayed(tmp_path, relay) -> Iterator[LiveServer]:
    """A live server reached through `relay` (its Host, 127.0.0.1:<relay port>, allowed)."""
    live = start_live_server(make_settings(tmp_path, allow_host=f"127.0.0.1:{relay.port}"))
    relay.target = live.port
    yield live
    live.kill()


def relay_client(relay: Relay) -> Client:
    return Client(f"http://127.0.0.1:{relay.port}", lean=True)


def send(bin_json: dict, subpath: str = "", **kwargs) -> int:
    """Send a request to a bin (straight to the server); its captured request's id."""
    response = requests.post(bin_json["url"] + subpath, timeout=10, **kwargs)
    assert response.status_code == 200
    return int(response.headers["X-Hooklab-Request-Id"])


# -- what a Watch gives ------------------------------------------------------------------------


def test_a_watch_gets_the_bins_first_request_in_full(live_server):
    client = Client(live_server.url, lean=True)
    try:
        bin_ = live_server.create_bin()
        watch = client.watch(bin_["id"])
        request_id = send(bin_, "/orders", json={"order_id": 1})
        send(bin_, "/second")
        found = watch.result(10)
        assert found["id"] == request_id
        assert (found["method"], found["subpath"]) == ("POST", "/orders")
        assert found["json"] == {"order_id": 1}
        assert "body_base64" in found  # in full
        with pytest.raises(RuntimeError):
            watch.result(10)  # read once
    finally:
        client.close()


def test_a_watch_sent_after_the_request_finds_it(live_server):
    client = Client(live_server.url, lean=True)
    try:
        bin_ = live_server.create_bin()
        first = send(bin_, "/a")
        send(bin_, "/b")
        assert client.watch(bin_["id"]).result(10)["id"] == first
    finally:
        client.close()


def test_only_a_lean_client_watches(live_server):
    client = Client(live_server.url)
    try:
        assert client.watch(live_server.create_bin()["id"]) is None
    finally:
        client.close()


def test_a_watch_whose_wait_ends_on_the_server_gives_none(live_server):
    client = Client(live_server.url, lean=True)
    try:
        bin_ = live_server.create_bin()
        assert client.watch(bin_["id"], timeout=0.2).result(10) is None  # the server's 204
        # The answered connection serves the next watch.
        watch = client.watch(bin_["id"])
        request_id = send(bin_)
        assert watch.result(10)["id"] == request_id
    finally:
        client.close()


def test_a_watch_not_answered_in_time_gives_none_and_can_be_watched_again(live_server):
    client = Client(live_server.url, lean=True)
    try:
        bin_ = live_server.create_bin()
        assert client.watch(bin_["id"]).result(0.2) is None
        watch = client.watch(bin_["id"])
        request_id = send(bin_)
        assert watch.result(10)["id"] == request_id
    finally:
        client.close()


def test_a_watch_of_an_unknown_bin_fails_clearly(live_server):
    client = Client(live_server.url, lean=True)
    try:
        with pytest.raises(HooklabError) as failure:
            client.watch(MISSING_BIN).result(10)
        assert (failure.value.status, failure.value.code) == (404, "bin_not_found")
        # Its connection, answered, serves the next watch.
        bin_ = live_server.create_bin()
        watch = client.watch(bin_["id"])
        request_id = send(bin_)
        assert watch.result(10)["id"] == request_id
    finally:
        client.close()


def test_a_watch_works_under_a_token(tmp_path):
    live = start_live_server(make_settings(tmp_path, token="s3cret"))
    try:
        bin_ = requests.post(
            f"{live.url}/api/bins", json={}, headers={"Authorization": "Bearer s3cret"}, timeout=10
        ).json()
        client = Client(live.url, token="s3cret", lean=True)
        watch = client.watch(bin_["id"])
        request_id = send(bin_)
        assert watch.result(10)["id"] == request_id
        client.close()
        refused = Client(live.url, token="wrong", lean=True)
        with pytest.raises(HooklabError) as failure:
            refused.watch(bin_["id"]).result(10)
        assert failure.value.status == 401
        refused.close()
    finally:
        live.kill()


# -- the connections behind Watches --------------------------------------------------------------


def test_watches_one_after_another_share_one_connection(relayed, relay):
    client = relay_client(relay)
    try:
        for _ in range(3):
            bin_ = relayed.create_bin()
            watch = client.watch(bin_["id"])
            request_id = send(bin_)
            assert watch.result(10)["id"] == request_id
        assert relay.connections == 1
    finally:
        client.close()


def test_watches_at_once_each_have_a_connection_then_serve_the_next_ones(relayed, relay):
    client = relay_client(relay)
    try:
        bins = [relayed.create_bin() for _ in range(3)]
        watches = [client.watch(b["id"]) for b in bins]
        sent = [send(b) for b in bins]
        assert [w.result(10)["id"] for w in watches] == sent
        assert relay.connections == 3
        # Given back, all three serve the next three.
        watches = [client.watch(b["id"]) for b in bins]
        assert [w.result(10)["id"] for w in watches] == sent
        assert relay.connections == 3
    finally:
        client.close()


def test_a_client_keeps_at_most_max_spare_connections(relayed, relay):
    client = relay_client(relay)
    try:
        bin_ = relayed.create_bin()
        request_id = send(bin_)  # every watch is answered at once
        count = MAX_SPARE + 2
        for _ in range(2):
            watches = [client.watch(bin_["id"]) for _ in range(count)]
            assert [w.result(10)["id"] for w in watches] == [request_id] * count
        # The second round had MAX_SPARE of the first's, and opened 2 more.
        assert relay.connections == count + 2
    finally:
        client.close()


def test_a_watch_on_a_kept_connection_the_server_closed_gives_none(relayed, relay):
    client = relay_client(relay)
    try:
        first, second = relayed.create_bin(), relayed.create_bin()
        watch = client.watch(first["id"])
        send(first)
        assert watch.result(10) is not None  # its connection is kept
        relay.cut_next()  # closed as the next request goes out on it
        watch = client.watch(second["id"])
        request_id = send(second)
        assert watch.result(10) is None  # the poll never got there: ask again
        # Asked again (a new connection), the server has it.
        assert client.wait(second["id"], timeout=10)["id"] == request_id
        assert relay.connections == 2
    finally:
        client.close()


def test_a_watch_on_a_new_connection_that_fails_says_so(relayed, relay):
    client = relay_client(relay)
    try:
        bin_ = relayed.create_bin()
        relay.cut_next()
        watch = client.watch(bin_["id"])
        with pytest.raises(HooklabError) as failure:
            watch.result(10)
        assert failure.value.message == (
            f"cannot reach Hooklab at {client.server} — is `hooklab serve` running?"
        )
    finally:
        client.close()


def test_closed_watches_free_the_servers_threads(tmp_path):
    threads = 4
    live = start_live_server(make_settings(tmp_path, threads=threads))
    client = Client(live.url, lean=True)
    try:
        bin_ = live.create_bin()
        watches = [client.watch(bin_["id"]) for _ in range(2 * threads)]
        for watch in watches:
            watch.close()
        # Calls time out well before the watches' 30 s: a thread still held by one would show.
        assert client.bin(bin_["id"])["id"] == bin_["id"]
        watch = client.watch(bin_["id"])
        request_id = send(bin_)
        # Until the server notices the closed ones (about a second) they keep their places,
        # and a new poll is refused (503, None here): then asked again, as the fixture does.
        found = watch.result(10) or client.wait(bin_["id"], timeout=10)
        assert found["id"] == request_id
    finally:
        client.close()
        live.kill()
