"""The manager's pages under hostile data, in real Chromium; and a strict CSP on every page.

tests/browser/test_xss_bin.py covers the bin's pages (captured requests, bin names). Here:
webhook names and URLs, event payloads, catalog events, and what a hostile receiver answers
(status reason, headers, body; the disabled reason built from them), on /webhooks,
/webhooks/new and /webhooks/<id> (delivery log and the Send Test Event dialog). An injected
script would set window.__pwned; the test checks it never does, and that each hostile string
is on the page as text (so the check is not passing on an empty page).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from playwright.sync_api import expect
from werkzeug.routing import IntegerConverter

from hooklab.app.factory import create_app
from tests.browser.conftest import assert_nothing_ran, watch_console
from tests.conftest import make_settings, start_live_server

pytestmark = pytest.mark.browser

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
TIGHT_IMG = "<img/src=x/onerror=window.__pwned=1>"  # no spaces: fits a URL and a reason phrase
SVG = "<svg/onload=window.__pwned=1>"
TOKEN = "xss-token-" + "t" * 20


class HostileReceiver:
    """A webhook receiver whose answers carry HTML: in the reason phrase, headers and body."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(500, f"Broken {TIGHT_IMG}")
                self.send_header("Content-Type", "text/html")
                self.send_header("X-Evil", IMG)
                body = (SCRIPT + IMG + SVG).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{TIGHT_IMG}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_site(tmp_path) -> Iterator[dict]:
    """A server with a hostile catalog event and a webhook that failed into being disabled."""
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            [
                {
                    "slug": "evil.event",
                    "name": f"Evil {IMG}",
                    "description": f"Describes {SCRIPT}",
                    "payload": {"html": IMG, SCRIPT: [SVG]},
                }
            ]
        )
    )
    settings = make_settings(
        tmp_path,
        catalog=str(catalog),
        retry_schedule="0.1",
        disable_after_failures=1,
    )
    live = start_live_server(settings)
    receiver = HostileReceiver()
    try:
        api = f"{live.url}/api"
        webhook = requests.post(
            f"{api}/webhooks",
            json={"name": f"{IMG}{SCRIPT}", "url": receiver.url, "event": "evil.event"},
            timeout=10,
        ).json()
        fired = requests.post(
            f"{api}/events/evil.event", json={"note": SCRIPT, "img": IMG}, timeout=10
        )
        assert fired.status_code == 202, fired.text
        delivery_id = fired.json()["deliveries"][0]["id"]
        for _ in range(200):  # both scheduled attempts fail, then the webhook is disabled
            found = requests.get(f"{api}/deliveries/{delivery_id}", timeout=5).json()
            if found["status"] == "failed":
                break
            threading.Event().wait(0.05)
        assert found["status"] == "failed", found
        read = requests.get(f"{api}/webhooks/{webhook['id']}", timeout=5).json()
        assert read["active"] is False and TIGHT_IMG in read["disabled_reason"]
        yield {"live": live, "webhook": read, "receiver": receiver}
    finally:
        receiver.close()
        live.stop()


def test_webhook_pages_show_hostile_data_as_text(page, hostile_site):
    live, webhook = hostile_site["live"], hostile_site["webhook"]
    console = watch_console(page)

    page.goto(f"{live.url}/webhooks")
    row = page.locator(".webhooks-table tr", has_text=f"{IMG}{SCRIPT}")
    expect(row.locator(".webhook-name")).to_have_text(f"{IMG}{SCRIPT}")
    expect(row.locator(".webhook-url")).to_have_text(hostile_site["receiver"].url)
    expect(row).to_contain_text(f"Evil {IMG}")
    expect(row.locator(".badge.bad", has_text="Disabled")).to_have_attribute(
        "title", webhook["disabled_reason"]
    )
    expect(row.locator(".badge.bad", has_text="HTTP 500")).to_contain_text(TIGHT_IMG)
    event = page.locator(".events-table tr", has_text="evil.event")
    expect(event.locator(".event-name")).to_contain_text(f"Evil {IMG}")
    expect(event.locator(".event-description")).to_have_text(f"Describes {SCRIPT}")
    expect(event.locator("pre.payload")).to_contain_text(IMG.replace('"', '\\"'))
    assert_nothing_ran(page, console)

    page.goto(f"{live.url}/webhooks/new")
    expect(page.locator("option", has_text=f"Evil {IMG}")).to_have_count(1)
    assert_nothing_ran(page, console)

    page.goto(f"{live.url}/webhooks/{webhook['id']}")
    expect(page.get_by_role("heading", name=f"{IMG}{SCRIPT}")).to_be_visible()
    expect(page.locator(".webhook-summary")).to_contain_text(TIGHT_IMG)  # the URL
    expect(page.locator("#disabled-reason")).to_contain_text(TIGHT_IMG)
    delivery = page.locator("#delivery-log details").first
    expect(delivery).to_be_visible()
    delivery.locator("summary").first.click()
    expect(delivery.locator("pre.payload")).to_contain_text(json.dumps(IMG))
    expect(delivery.locator("pre.payload")).to_contain_text(SCRIPT)
    attempt = delivery.locator("details.attempt").first
    attempt.locator("summary").click()
    expect(attempt).to_contain_text(SCRIPT + IMG + SVG)  # the receiver's body
    expect(attempt).to_contain_text(f"Broken {TIGHT_IMG}")  # its reason phrase
    expect(attempt.locator("td", has_text=IMG).first).to_be_visible()  # its header
    assert_nothing_ran(page, console)

    # Send Test Event: the dialog shows what the hostile receiver answered, as text.
    page.get_by_role("button", name="Send Test Event").click()
    dialog = page.locator("#test-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#test-body")).to_have_text(SCRIPT + IMG + SVG)
    expect(dialog.locator("#test-headers")).to_contain_text(IMG)
    assert dialog.locator("img, svg, script").count() == 0
    assert_nothing_ran(page, console)


def page_paths(app, ids: dict[str, str]) -> list[str]:
    """Every GET page of the app (no /api, /ws or /static), with real ids filled in."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api", "/static", "/ws")) or rule.websocket:
            continue
        if "GET" not in rule.methods:
            continue
        path = rule.rule
        for name, converter in rule._converters.items():
            value = "1" if isinstance(converter, IntegerConverter) else ids[name]
            path = path.replace(f"<{name}>", value).replace(f"<int:{name}>", value)
        paths.append(path)
    return sorted(paths)


def test_every_page_carries_a_strict_csp_and_no_inline_code(page, tmp_path):
    app = create_app(make_settings(tmp_path, token=TOKEN))
    live = start_live_server(app.config["HOOKLAB"])
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        bin_id = requests.post(
            f"{live.url}/api/bins", json={"name": IMG}, headers=auth, timeout=5
        ).json()["id"]
        webhook = requests.post(
            f"{live.url}/api/webhooks",
            json={"name": IMG, "url": f"{live.url}/b/{bin_id}", "event": "*"},
            headers=auth,
            timeout=5,
        ).json()
        paths = page_paths(app, {"bin_id": bin_id, "webhook_id": str(webhook["id"])})
        assert {"/", "/webhooks", "/login"} <= set(paths)
        # Error pages too: unknown ids, an unknown route.
        paths += ["/bins/" + "a" * 26, "/webhooks/999999", "/no-such-page"]
        console = watch_console(page)
        page.goto(f"{live.url}/login")  # the login page itself, before logging in
        check_csp(page, page.goto(f"{live.url}/login?next=/{SCRIPT}"), "/login")
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live.url}/{SCRIPT}".replace("<", "%3C").replace(">", "%3E"))
        for path in paths:
            check_csp(page, page.goto(live.url + path), path)
        assert_nothing_ran(page, console)
        cookies = {c["name"]: c for c in page.context.cookies()}
        assert cookies["hooklab_session"]["httpOnly"] is True
        assert cookies["hooklab_session"]["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # scripts cannot read the session
    finally:
        live.stop()


def check_csp(page, response, path: str) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, path
    assert "style-src 'self'" in policy, path
    assert "default-src 'self'" in policy and "object-src 'none'" in policy, path
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
    assert page.locator("script:not([src])").count() == 0, path
    assert page.locator("[style]").count() == 0, path
    inline_handlers = page.evaluate(
        """() => [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
            .filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name))"""
    )
    assert inline_handlers == [], (path, inline_handlers)


def test_log_in_and_out_in_the_browser(page, tmp_path):
    live = start_live_server(make_settings(tmp_path, token=TOKEN))
    try:
        page.goto(f"{live.url}/webhooks")
        expect(page).to_have_url(f"{live.url}/login?next=/webhooks")
        page.get_by_label("Access token").fill("not the token")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".form-error")).to_contain_text("not right")
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live.url}/webhooks")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{live.url}/login")
        page.goto(f"{live.url}/")
        expect(page).to_have_url(f"{live.url}/login?next=/")
        assert page.js_errors == []
    finally:
        live.stop()
