"""Long polls and live websockets share a budget of server threads with delayed answers, so
idle waiters can never take the threads captures and the API need (a default server's 64
threads were all taken by 64 idle polls, and the capture they waited for queued for 8 s)."""

from __future__ import annotations

import json
import socket
import threading
import time

import requests
import simple_websocket

from hooklab.bin_server.holds import Holds, reserved
from hooklab.client.http import Client, LiveSocket
from tests.conftest import make_settings, start_live_server
from tests.test_long_polls import open_long_poll
from tests.waiting import wait_for

THREADS = 8  # reserved(8) = 2: six places for waiting connections


def test_the_budget_and_its_parent():
    parent = Holds(2)
    child = Holds(5, parent)
    assert child.enter() and child.enter()
    assert not child.enter()  # the parent is full
    assert not parent.enter()
    child.leave()
    assert parent.enter()
    assert reserved(64) == 8 and reserved(8) == 2 and reserved(1) == 1


def test_waiting_connections_never_take_the_last_threads(tmp_path):
    live = start_live_server(make_settings(tmp_path, threads=THREADS))
    polls: list[socket.socket] = []
    sockets: list[LiveSocket] = []
    try:
        target = live.create_bin()
        cap = THREADS - reserved(THREADS)
        # Half the places to long polls, half to live pages: each holds a thread.
        polls = [open_long_poll(live.port, target["id"], "&path=/never") for _ in range(cap // 2)]
        for _ in range(cap - cap // 2):
            sockets.append(LiveSocket.connect(f"{live.ws_url}/ws/bins/{target['id']}"))
        # Every place is taken once the server has read them all (its health says how many
        # are): one more poll is refused.
        wait_for(
            lambda: (
                requests.get(f"{live.url}/api/health", timeout=5).json()["waiting"]
                == {"connections": cap, "places": cap}
            ),
            what="every place taken",
        )
        refused = requests.get(
            f"{live.url}/api/bins/{target['id']}/requests/wait?timeout=5", timeout=10
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "too_many_waiting"
        assert refused.headers["Retry-After"] == "1"
        assert "--threads" in refused.json()["error"]["message"]
        # ... and one more live page too: an error frame, then close 1013 (try again later).
        extra = LiveSocket.connect(f"{live.ws_url}/ws/bins/{target['id']}")
        frame = json.loads(extra.receive(timeout=5))
        assert frame["error"]["code"] == "too_many_waiting"
        try:
            assert extra.receive(timeout=5) is None
        except simple_websocket.ConnectionClosed as closed:
            assert closed.reason == 1013
        # Captures and the API still have their threads.
        started = time.monotonic()
        assert requests.post(target["url"], data=b"x", timeout=5).status_code == 200
        assert requests.get(f"{live.url}/api/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 2
        # What has arrived is answered without a place to wait; so is a look that does not wait.
        wait_url = f"{live.url}/api/bins/{target['id']}/requests/wait"
        arrived = requests.get(f"{wait_url}?after=0&timeout=5", timeout=10)
        assert arrived.status_code == 200 and arrived.json()["body_text"] == "x"
        x_id = arrived.json()["id"]
        assert requests.get(f"{wait_url}?after={x_id}&timeout=0", timeout=10).status_code == 204
        assert requests.get(f"{wait_url}?after={x_id}&timeout=5", timeout=10).status_code == 503
        # A client refused a place until its timeout looks once more without waiting: None.
        assert Client(live.url).wait(target["id"], after=x_id, timeout=1.5) is None
        # A place freed is a place taken again; the client waits its turn (Retry-After).
        sockets.pop().close()
        later = threading.Timer(1.0, requests.post, (target["url"],), {"data": b"y", "timeout": 5})
        later.start()
        found = Client(live.url).wait(target["id"], after=x_id, timeout=8)
        later.join()
        assert found is not None and found["body_text"] == "y"
    finally:
        live.kill()  # first: a socket the server closed already must not leave it running
        for sock in polls:
            sock.close()
        for ws in sockets:
            try:
                ws.close()
            except simple_websocket.ConnectionClosed:
                pass
