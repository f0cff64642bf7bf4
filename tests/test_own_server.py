"""URLs that reach this server: refused for webhooks (but a bin's), forwards and probes; the
app refuses what Hooklab itself sends, so a webhook saved with such a URL cannot loop."""

from __future__ import annotations

import time

import pytest
import requests

from hooklab.app.factory import open_store
from hooklab.shared.own_server import ServerAddress, address_of, is_capture_url, points_here

HERE = ServerAddress(frozenset({("127.0.0.1", 8000)}), frozenset({8000}))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/api/events/x",
        "http://127.1:8000/",
        "http://2130706433:8000/",
        "http://0x7f.0.0.1:8000/",
        "http://[::ffff:127.0.0.1]:8000/",
        "http://[::1]:8000/",
        "http://LOCALHOST.:8000/",
        "http://app.localhost:8000/",
        "http://0.0.0.0:8000/",
        "https://127.0.0.1:8000/",
    ],
)
def test_every_spelling_of_this_server_is_known(url):
    assert points_here(url, HERE)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001/",
        "http://127.0.0.1/",  # port 80
        "http://10.0.0.1:8000/",
        "http://example.com:8000/",
        "http://[::1",  # not a URL at all
        "http://127.0.0.1:99999/",
    ],
)
def test_other_addresses_are_not_this_server(url):
    assert not points_here(url, HERE)


def test_a_server_on_one_address_is_not_reached_through_loopback():
    lan = ServerAddress(frozenset({("192.168.1.5", 8000)}), frozenset())
    assert not points_here("http://127.0.0.1:8000/", lan)
    assert points_here("http://192.168.1.5:8000/", lan)
    assert points_here("http://3232235781:8000/", lan)  # 192.168.1.5 as one number


def test_capture_urls_as_the_server_decodes_them():
    assert is_capture_url("http://127.0.0.1:8000/b/abc")
    assert is_capture_url("http://127.0.0.1:8000/%62/abc")
    assert not is_capture_url("http://127.0.0.1:8000/api/bins")
    assert not is_capture_url("http://127.0.0.1:8000/bins/abc")
    assert address_of("not-an-address") is None
    assert address_of("١٢٧.0.0.1") is None  # digits a resolver would not take


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/b/../api/bins",  # requests resolves the dot segments
        "http://127.0.0.1:8000/b/x/../../api/bins",
        "http://127.0.0.1:8000\\@example.com/../api/bins",  # urllib3 takes \\ for /: goes here
        "http://example.com\\@127.0.0.1:8000/api",  # ... and this one goes to example.com
    ],
)
def test_a_url_is_judged_as_it_will_be_sent(url):
    assert not is_capture_url(url)
    assert points_here(url, HERE) is ("example.com\\" not in url)


def test_a_capture_path_with_dot_segments_is_judged_as_sent():
    assert is_capture_url("http://127.0.0.1:8000/api/../b/abc")
    assert not is_capture_url("http://127.0.0.1:8000/b/abc/../../api")


@pytest.mark.parametrize("spelling", ["/b/../api/bins", "\\@example.com/../api/bins"])
def test_webhooks_forwards_and_replays_refuse_a_url_that_is_sent_to_the_api(live_server, spelling):
    url = live_server.url + spelling
    assert webhook(live_server, url).status_code == 422
    forward = requests.post(
        f"{live_server.url}/api/bins", json={"forward": {"url": url}}, timeout=5
    )
    assert forward.status_code == 422 and forward.json()["error"]["field"] == "forward.url"
    source = live_server.create_bin()
    victim = live_server.create_bin()
    request_id = requests.post(source["url"], data=b"{}", timeout=5).headers["X-Hooklab-Request-Id"]
    replay_url = f"{live_server.url}/api/bins/{source['id']}/requests/{request_id}/replay"
    deleting = {"url": live_server.url + spelling.replace("/api/bins", f"/api/bins/{victim['id']}"),
                "method": "DELETE", "headers": [], "body": ""}  # fmt: skip
    refused = requests.post(replay_url, json=deleting, timeout=10)
    assert refused.status_code == 422, refused.text
    assert requests.get(f"{live_server.url}/api/bins/{victim['id']}", timeout=5).ok  # still there


def webhook(live_server, url: str) -> requests.Response:
    return requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Here", "url": url, "event": "payment_received"},
        timeout=5,
    )


def test_a_webhook_at_this_servers_api_or_pages_is_refused_in_any_spelling(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    for url in (
        f"http://127.0.0.1:{port}/api/events/payment_received",
        f"http://127.1:{port}/api/webhooks/1/test",
        f"http://2130706433:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/api/probe",
        f"http://localhost.:{port}/webhooks",
    ):
        response = webhook(live_server, url)
        assert response.status_code == 422, url
        error = response.json()["error"]
        assert error["field"] == "url"
        assert "own pages or API" in error["message"]
    # A bin of this server is what the walkthrough does: still fine, in any spelling.
    target = live_server.create_bin()
    assert webhook(live_server, target["url"]).status_code == 201
    spelled = target["url"].replace("127.0.0.1", "127.1").replace("/b/", "/%62/")
    assert webhook(live_server, spelled).status_code == 201
    # Nothing refused was saved.
    assert len(requests.get(f"{live_server.url}/api/webhooks", timeout=5).json()) == 2


def test_a_probe_of_this_servers_api_is_refused(live_server):
    response = requests.post(
        f"{live_server.url}/api/probe",
        json={"url": f"{live_server.url}/api/probe", "secret": "whsec_" + "A" * 32},
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "url"


@pytest.mark.parametrize("url", ["http://[::1", "http://[zz]/", "http://[::1]:x/"])
def test_a_url_with_a_broken_host_is_a_422_everywhere(live_server, url):
    base = live_server.url
    target = live_server.create_bin()
    created = webhook(live_server, target["url"]).json()
    answers = {
        "webhook": webhook(live_server, url),
        "webhook change": requests.patch(
            f"{base}/api/webhooks/{created['id']}", json={"url": url}, timeout=5
        ),
        "forward": requests.patch(
            f"{base}/api/bins/{target['id']}", json={"forward": {"url": url}}, timeout=5
        ),
        "probe": requests.post(
            f"{base}/api/probe", json={"url": url, "secret": "whsec_" + "A" * 32}, timeout=5
        ),
    }
    for what, response in answers.items():
        assert response.status_code == 422, (what, response.text)
        assert response.json()["error"]["field"] in ("url", "forward.url"), what


def test_a_forward_to_this_server_is_refused_in_any_spelling(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    target = live_server.create_bin()
    for url, why in (
        (f"http://127.0.0.1:{port}/%62/{target['id']}", "capture URL"),
        (f"http://2130706433:{port}/b/{target['id']}", "capture URL"),
        (f"http://[::ffff:127.0.0.1]:{port}/b/{target['id']}", "capture URL"),
        (f"http://127.0.0.1:{port}/api/bins", "own pages or API"),
    ):
        response = requests.patch(
            f"{live_server.url}/api/bins/{target['id']}",
            json={"forward": {"url": url, "mode": "sync", "with_path": False}},
            timeout=5,
        )
        assert response.status_code == 422, url
        assert why in response.json()["error"]["message"]
    shown = requests.get(f"{live_server.url}/api/bins/{target['id']}", timeout=5).json()
    assert shown["forward"] is None


def test_what_hooklab_sends_cannot_drive_the_api(live_server):
    for header in ("X-Hooklab-Delivery", "X-Hooklab-Probe", "X-Hooklab-Hops"):
        response = requests.post(
            f"{live_server.url}/api/bins", json={}, headers={header: "1"}, timeout=5
        )
        assert response.status_code == 508
        assert response.json()["error"]["code"] == "loop_detected"
    assert requests.get(f"{live_server.url}/api/bins", timeout=5).json() == []


def test_a_webhook_saved_with_a_url_here_does_not_loop(live_server, settings):
    """A URL the save could not know is here (a DNS name, an older database): the first
    delivery is refused by the app, and fires nothing."""
    target = live_server.create_bin()
    created = webhook(live_server, target["url"]).json()
    store = open_store(settings.db)
    with store.write() as conn:
        conn.execute(
            "UPDATE webhooks SET url = ? WHERE id = ?",
            (f"{live_server.url}/api/events/payment_received", created["id"]),
        )
    fired = requests.post(f"{live_server.url}/api/events/payment_received", timeout=5)
    assert fired.status_code == 202
    deliveries_url = f"{live_server.url}/api/webhooks/{created['id']}/deliveries"
    deadline = time.monotonic() + 20
    attempts: list = []
    while time.monotonic() < deadline:
        found = requests.get(deliveries_url, timeout=5).json()
        attempts = [a for d in found for a in d["attempts"] if a["finished_at"]]
        if attempts:
            break
        time.sleep(0.05)
    assert attempts, "no attempt finished"
    assert attempts[0]["status_code"] == 508, attempts[0]
    # Had the delivery fired the event again, its own delivery would exist by now: the
    # attempt's answer is logged only after the request that would have made it returned.
    assert len(requests.get(deliveries_url, timeout=5).json()) == 1


def test_a_replay_to_this_servers_api_is_refused_but_into_a_bin_is_fine(live_server):
    source = live_server.create_bin()
    into = live_server.create_bin()
    request_id = requests.post(source["url"], data=b"{}", timeout=5).headers["X-Hooklab-Request-Id"]
    replay_url = f"{live_server.url}/api/bins/{source['id']}/requests/{request_id}/replay"
    own = replay_url.replace("127.0.0.1", "127.1")
    refused = requests.post(replay_url, json={"url": own}, timeout=10)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "url"
    assert "own pages or API" in refused.json()["error"]["message"]
    sent = requests.post(replay_url, json={"url": into["url"]}, timeout=10)
    assert sent.status_code in (200, 201), sent.text
    listed = requests.get(f"{live_server.url}/api/bins/{into['id']}/requests", timeout=5).json()
    assert len(listed) == 1


class _App:
    """An app on a free port of 127.0.0.1 that records the paths it was sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.paths: list[str] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                app.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_DELETE = _any  # noqa: N815 - http.server's naming

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_captured_path_cannot_change_the_host_a_forward_or_replay_goes_to(live_server):
    # `/b/<id>%2F@127.0.0.1:<port>/api/...` put after `http://127.0.0.1:5000` made the app's
    # address userinfo and this server (or any host) the target: a hostile sender drove the
    # API through a replay or `hooklab listen`, and read internal services through a forward.
    app = _App()
    try:
        port = live_server.url.rsplit(":", 1)[1]
        sneaky = f"%2F@127.0.0.1:{port}/api/bins"
        forwarding = live_server.create_bin(forward={"url": app.url, "mode": "sync"})
        answer = requests.get(f"{forwarding['url']}{sneaky}", timeout=10)
        assert answer.status_code == 200 and answer.text == "ok"
        assert app.paths == [f"/{sneaky}"]  # the app got it, below its URL

        source = live_server.create_bin()
        victim = live_server.create_bin()
        hostile = f"%2F@127.0.0.1:{port}/api/bins/{victim['id']}"
        rid = requests.delete(f"{source['url']}{hostile}", timeout=5).headers[
            "X-Hooklab-Request-Id"
        ]
        replayed = requests.post(
            f"{live_server.url}/api/bins/{source['id']}/requests/{rid}/replay",
            json={"url": app.url, "with_path": True},
            timeout=10,
        )
        assert replayed.json()["status_code"] == 200, replayed.text
        assert app.paths[-1] == f"/{hostile}"
        assert requests.get(f"{live_server.url}/api/bins/{victim['id']}", timeout=5).ok
    finally:
        app.stop()


@pytest.mark.parametrize(
    ("subpath", "sent"),
    [
        ("%2F@evil.example:80/x", "http://127.0.0.1:5000/%2F@evil.example:80/x"),
        ("/a?b#c", "http://127.0.0.1:5000/a%3Fb%23c"),
        ("/../admin", "http://127.0.0.1:5000/%2E%2E/admin"),
        ("/x", "http://127.0.0.1:5000/x"),
    ],
)
def test_a_subpath_always_goes_below_the_url(subpath, sent):
    from urllib.parse import urlsplit

    from hooklab.shared.resend import with_subpath

    assert with_subpath("http://127.0.0.1:5000", subpath) == sent
    assert urlsplit(with_subpath("http://127.0.0.1:5000", subpath)).hostname == "127.0.0.1"
