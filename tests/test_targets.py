"""The private-target block: addresses refused, URLs checked, and no connection ever opened.

Fake resolvers stand in for DNS, so no traffic goes anywhere but 127.0.0.1; the local receiver
counts the connections it accepts, which proves a blocked attempt opened none.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from hooklab.app.factory import start_background, stop_background
from hooklab.shared import targets
from hooklab.shared.targets import TargetBlocked, blocked_reason, check_target, guarded_session
from tests.conftest import make_settings


def fake_resolver(table: dict[str, list[str]]):
    """A getaddrinfo stand-in answering from `table`; unknown names do not resolve."""
    calls: list[str] = []

    def resolve(host, port, *args, **kwargs):
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for address in table[host]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    resolve.calls = calls
    return resolve


class Receiver:
    """An HTTP server on 127.0.0.1 that counts accepted connections and records requests."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.connections = 0
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append({"host": self.headers["Host"], "body": body})
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                conn = super().get_request()
                receiver.connections += 1
                return conn

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def accepted_after_probe(self) -> int:
        """Connections accepted before a probe connection made now (accepts are in order)."""
        before = self.connections
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            pass
        for _ in range(500):
            if self.connections > before:
                break
            threading.Event().wait(0.01)
        return self.connections - 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "100.64.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "2002:7f00:1::1",
        "64:ff9b::a9fe:a9fe",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert blocked_reason(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert blocked_reason(address) is None


def test_reasons_name_the_kind_of_address():
    assert "link-local" in blocked_reason("169.254.169.254")
    assert "loopback" in blocked_reason("127.0.0.1")
    assert "private" in blocked_reason("10.0.0.1")
    assert "IPv4-mapped" in blocked_reason("::ffff:10.0.0.1")


def test_check_target_resolves_through_the_given_resolver():
    resolver = fake_resolver(
        {"hooks.example": ["93.184.216.34"], "meta.example": ["169.254.169.254"]}
    )
    assert check_target("https://hooks.example/in", resolver) == ["93.184.216.34"]
    with pytest.raises(TargetBlocked) as blocked:
        check_target("http://meta.example/latest/meta-data", resolver)
    assert "169.254.169.254" in blocked.value.message
    assert blocked.value.address == "169.254.169.254"
    assert resolver.calls == ["hooks.example", "meta.example"]


def test_one_private_answer_among_public_ones_is_refused():
    resolver = fake_resolver({"mixed.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(TargetBlocked):
        check_target("http://mixed.example/", resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://[::1]:8080/x",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/",
        "http://127.1/",
        "http://0/",
        "http://169.254.169.254./latest",
    ],
)
def test_literal_and_odd_spellings_of_local_addresses_are_refused(url):
    # The real resolver: these spellings resolve locally (no DNS query leaves the machine).
    with pytest.raises(TargetBlocked):
        check_target(url, socket.getaddrinfo)


@pytest.mark.parametrize("url", ["ftp://hooks.example/", "http:///nohost", "http://[::1", "x"])
def test_urls_that_cannot_be_checked_are_refused(url):
    with pytest.raises(TargetBlocked):
        check_target(url, fake_resolver({"hooks.example": ["93.184.216.34"]}))


def test_a_name_that_does_not_resolve_is_refused_with_a_reason():
    with pytest.raises(TargetBlocked) as blocked:
        check_target("http://nowhere.example/", fake_resolver({}))
    assert "cannot be resolved" in blocked.value.message


def test_guarded_session_refuses_without_opening_a_connection(receiver):
    resolver = fake_resolver({"hooks.example": ["127.0.0.1"]})
    with guarded_session(resolver) as session:
        with pytest.raises(TargetBlocked):
            session.post(f"http://hooks.example:{receiver.port}/hook", json={}, timeout=5)
        with pytest.raises(TargetBlocked):
            session.post(f"http://127.0.0.1:{receiver.port}/hook", json={}, timeout=5)
    assert receiver.accepted_after_probe() == 0
    assert receiver.requests == []


def test_a_dns_answer_that_changes_after_the_check_is_caught(receiver):
    # Rebinding: public when the webhook is saved, loopback when the attempt connects.
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    def rebinding(host, port, *args, **kwargs):
        return fake_resolver({host: next(answers)})(host, port)

    url = f"http://rebind.example:{receiver.port}/hook"
    assert check_target(url, rebinding) == ["93.184.216.34"]
    with guarded_session(rebinding) as session, pytest.raises(TargetBlocked):
        session.post(url, json={"n": 1}, timeout=5)
    assert receiver.accepted_after_probe() == 0


def test_guarded_session_connects_to_the_address_it_checked(receiver):
    # A policy that allows loopback shows the pinning: the connection goes to the checked
    # address, while the Host header keeps the name.
    resolver = fake_resolver({"receiver.test": ["127.0.0.1"]})
    with guarded_session(resolver, blocked=lambda address: None) as session:
        response = session.post(
            f"http://receiver.test:{receiver.port}/hook", data=b"hello", timeout=5
        )
    assert response.status_code == 200
    assert receiver.requests == [{"host": f"receiver.test:{receiver.port}", "body": b"hello"}]
    assert resolver.calls == ["receiver.test"]


def test_a_redirect_to_a_private_address_is_refused_too():
    redirector = Receiver(redirect_to="http://internal.test/admin")
    try:
        resolver = fake_resolver({"internal.test": ["10.0.0.1"]})

        def only_loopback_allowed(address: str) -> str | None:
            return None if address == "127.0.0.1" else blocked_reason(address)

        with guarded_session(resolver, only_loopback_allowed) as session:
            with pytest.raises(TargetBlocked):
                session.post(f"http://127.0.0.1:{redirector.port}/", json={}, timeout=5)
        assert resolver.calls == ["internal.test"]
        assert len(redirector.requests) == 1
    finally:
        redirector.close()


def test_default_resolver_is_looked_up_at_call_time(monkeypatch, receiver):
    # Tests of the running server swap the module's resolver; the session must use it.
    resolver = fake_resolver({"hooks.example": ["10.9.8.7"]})
    monkeypatch.setattr(targets, "RESOLVER", resolver)
    with pytest.raises(TargetBlocked):
        check_target("http://hooks.example/")
    with guarded_session() as session, pytest.raises(TargetBlocked):
        session.post(f"http://hooks.example:{receiver.port}/", timeout=5)
    assert resolver.calls == ["hooks.example", "hooks.example"]


def test_guarded_session_ignores_proxy_settings(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with guarded_session() as session:
        assert session.trust_env is False
        assert isinstance(session, requests.Session)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path, block_private_targets=True)


def test_the_server_blocks_at_save_and_before_every_attempt(
    app, client, monkeypatch, receiver, request
):
    """The app in this process (its delivery workers running), so DNS can be faked for it."""
    # DNS as the server sees it: a public answer when the webhook is saved, then loopback.
    answers = {"hooks.example": ["93.184.216.34"], "private.example": ["10.0.0.5"]}

    def resolver(host, port, *args, **kwargs):
        return fake_resolver(answers)(host, port)

    monkeypatch.setattr(targets, "RESOLVER", resolver)
    start_background(app)
    request.addfinalizer(lambda: stop_background(app))
    refused = client.post(
        "/api/webhooks", json={"name": "Private", "url": "http://private.example/in", "event": "*"}
    )
    assert refused.status_code == 422
    assert refused.json["error"]["field"] == "url"
    assert "private address" in refused.json["error"]["message"]

    url = f"http://hooks.example:{receiver.port}/hook"
    created = client.post("/api/webhooks", json={"name": "Rebinds", "url": url, "event": "*"})
    assert created.status_code == 201, created.text
    webhook_id = created.json["id"]
    answers["hooks.example"] = ["127.0.0.1"]  # the receiver, which must never be reached

    slug = client.get("/api/events").json[0]["slug"]
    assert client.post(f"/api/events/{slug}", json={}).status_code == 202
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = client.get(f"/api/webhooks/{webhook_id}/deliveries").json
        if found and found[0]["status"] == "failed":
            break
        time.sleep(0.1)
    delivery = found[0]
    assert delivery["status"] == "failed", delivery
    # Every attempt of the schedule was checked again, and each one was refused.
    assert len(delivery["attempts"]) == 4
    for attempt in delivery["attempts"]:
        assert attempt["error_kind"] == "blocked target"
        assert "loopback" in attempt["error"]
        assert attempt["status_code"] is None

    test_send = client.post(f"/api/webhooks/{webhook_id}/test").json
    assert test_send["ok"] is False and "blocked target" in test_send["error"]
    assert receiver.accepted_after_probe() == 0
    assert receiver.requests == []


# --- a resolver that hangs is covered by the attempt's deadline ---------------------------------


@pytest.mark.parametrize("block_private", [False, True])
def test_a_hanging_dns_lookup_does_not_hold_the_attempt_past_its_deadline(
    monkeypatch, block_private
):
    from hooklab.sender.attempt import new_session, perform
    from hooklab.sender.deadline import Watchdog

    release = threading.Event()
    asked: list[str] = []

    def hanging_resolver(host, port, *args, **kwargs):
        asked.append(host)
        release.wait(60)  # a DNS server that never answers (released at the end of the test)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(targets, "RESOLVER", hanging_resolver)
    try:
        with new_session(Watchdog(), block_private) as session:
            outcome = perform(session, "http://hooks.test:9/x", b"{}", {}, 0.3, 1024)
        # The attempt is over while the lookup still hangs: the deadline did not wait for it.
        assert asked == ["hooks.test"] and not release.is_set()
        assert outcome.error_kind == "timeout", outcome.error
        assert "hooks.test" in outcome.error
    finally:
        release.set()


def test_a_lookup_inside_a_deadline_returns_what_the_resolver_gives(receiver):
    from hooklab.sender.attempt import new_session, perform
    from hooklab.sender.deadline import Watchdog

    # `localhost` resolves through the real resolver, in the helper thread.
    url = f"http://localhost:{receiver.port}/hook"
    with new_session(Watchdog()) as session:
        outcome = perform(session, url, b"{}", {}, 5.0, 1024)
    assert outcome.status_code == 200, outcome.error
