"""`hooklab listen` and `bin tail`: follow a bin live and catch up after a forced disconnect."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading

import pytest
import requests

from tests.app_receiver import AppReceiver, wait_for
from tests.served import HOOKLAB, start


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 whose connections can be cut (and new ones refused) at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, up), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        # The server answers only to its own names (DNS rebinding guard): requests going up
        # get the server's port in their Host header instead of the proxy's.
        mine = f"Host: 127.0.0.1:{self.port}\r\n".encode()
        theirs = f"Host: 127.0.0.1:{self.target_port}\r\n".encode()
        try:
            while data := source.recv(65536):
                sink.sendall(data.replace(mine, theirs) if upstream else data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and cut every open one."""
        self.open.clear()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def resume(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def app_receiver():
    receiver = AppReceiver()
    yield receiver
    receiver.stop()


def listen(server_url: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    return subprocess.Popen(
        [HOOKLAB, "listen", *args, "--server", server_url, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def interrupt(process: subprocess.Popen) -> str:
    """Ctrl-C: returns what it wrote to stderr, once it exited cleanly."""
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    return finish(process)


def finish(process: subprocess.Popen) -> str:
    """Close the pipes of an ended process; returns its stderr."""
    err = process.stderr.read()
    process.stderr.close()
    process.stdout.close()
    return err


class Lines:
    """The JSON lines a `listen` prints, read in a thread."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.items: list[dict] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.items.append(json.loads(line))

    def of(self, kind: str) -> list[dict]:
        return [i for i in self.items if i["type"] == kind]


def test_listen_creates_a_bin_forwards_and_catches_up_after_a_disconnect(tmp_path, app_receiver):
    proxy = CuttableProxy(0)
    served = start(tmp_path, "--db", str(tmp_path / "l.db"))
    proxy.target_port = served.port
    process = listen(proxy.url, "--forward-to", app_receiver.url + "/app")
    lines = Lines(process)
    try:
        [made] = wait_for(lambda: lines.of("bin"), timeout=30, what="the new bin's URL")
        capture_url = made["url"].replace(proxy.url, served.url)
        assert requests.post(capture_url + "/hooks?x=1", data=b"one", timeout=5).ok
        wait_for(lambda: len(lines.of("forwarded")) == 1, timeout=30, what="the first forward")
        first = lines.of("forwarded")[0]
        assert (first["method"], first["path"], first["status_code"]) == ("POST", "/hooks?x=1", 200)
        assert app_receiver.seen[0].path == "/app/hooks?x=1"
        assert app_receiver.seen[0].body == b"one"

        proxy.cut()  # listen loses its stream; captures go on meanwhile
        for i in range(5):
            assert requests.post(capture_url + f"/while-away/{i}", data=b"%d" % i, timeout=5).ok
        wait_for(lambda: lines.of("reconnecting"), timeout=30, what="listen to notice")
        proxy.resume()
        wait_for(lambda: len(lines.of("forwarded")) == 6, timeout=30, what="the missed requests")
        paths = [f["path"] for f in lines.of("forwarded")]
        assert paths == ["/hooks?x=1"] + [f"/while-away/{i}" for i in range(5)]
        assert [s.body for s in app_receiver.seen] == [b"one", b"0", b"1", b"2", b"3", b"4"]
    finally:
        err = interrupt(process)  # Ctrl-C stops cleanly
        proxy.close()
        served.stop()
    assert "Traceback" not in err


def test_listen_follows_a_given_bin_from_after_and_with_a_token(tmp_path, app_receiver):
    server = start(tmp_path, "--db", str(tmp_path / "t.db"), "--token", "s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    try:
        b = requests.post(f"{server.url}/api/bins", json={}, headers=auth, timeout=5).json()
        ids = [
            requests.post(b["url"], data=b"%d" % i, timeout=5).headers["X-Hooklab-Request-Id"]
            for i in range(3)
        ]
        process = listen(
            server.url, b["id"], "--forward-to", app_receiver.url, "--after", ids[0],
            "--token", "s3cret",
        )  # fmt: skip
        lines = Lines(process)
        try:
            wait_for(
                lambda: len(lines.of("forwarded")) == 2,
                timeout=30,
                what="the backlog after --after",
            )
            assert [f["id"] for f in lines.of("forwarded")] == [int(i) for i in ids[1:]]
            assert [s.body for s in app_receiver.seen] == [b"1", b"2"]
        finally:
            interrupt(process)
        refused = listen(server.url, b["id"], "--forward-to", app_receiver.url)
        assert refused.wait(10) == 1
        assert "token" in finish(refused)
    finally:
        server.stop()


def test_listen_says_when_the_app_is_down(served):
    proxy_free = socket.socket()
    proxy_free.bind(("127.0.0.1", 0))
    closed_port = proxy_free.getsockname()[1]
    proxy_free.close()
    b = requests.post(f"{served.url}/api/bins", json={}, timeout=5).json()
    process = subprocess.Popen(
        [HOOKLAB, "listen", b["id"], "--server", served.url, "--forward-to",
         f"http://127.0.0.1:{closed_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # It starts from the newest request: send once it says it is listening.
        assert "Forwarding bin" in process.stderr.readline()
        assert requests.post(b["url"] + "/h", data=b"x", timeout=5).ok
        line = process.stdout.readline()
        assert line.startswith("POST /h -> error: cannot reach")
    finally:
        interrupt(process)


def test_bin_tail_follows_on_after_a_disconnect_without_missing_a_request(tmp_path):
    # A restarted server or a broken connection: tail picks the stream up again from the last
    # request it printed (it used to end with "the live stream closed").
    proxy = CuttableProxy(0)
    served = start(tmp_path, "--db", str(tmp_path / "tail.db"))
    proxy.target_port = served.port
    bin_row = requests.post(f"{served.url}/api/bins", json={}, timeout=5).json()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLAB_")}
    process = subprocess.Popen(
        [HOOKLAB, "bin", "tail", bin_row["id"], "--server", proxy.url, "--json", "--after", "0",
         "--count", "4", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    printed: list[dict] = []
    reader = threading.Thread(
        target=lambda: printed.extend(json.loads(line) for line in process.stdout), daemon=True
    )
    reader.start()
    try:
        assert requests.post(bin_row["url"] + "/before", timeout=5).ok
        wait_for(lambda: printed, timeout=30, what="the first request, live")
        proxy.cut()  # the stream breaks; requests keep arriving meanwhile
        for i in range(3):
            assert requests.post(bin_row["url"] + f"/while-away/{i}", timeout=5).ok
        proxy.resume()
        assert process.wait(60) == 0
        reader.join(10)
        err = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
        proxy.close()
        served.stop()
    assert [r["subpath"] for r in printed] == ["/before"] + [f"/while-away/{i}" for i in range(3)]
    assert "Lost the live stream" in err and "Traceback" not in err
