"""The home page in a real browser: create a bin in one click, watch a request arrive live."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import open_request, run_copied_curl

pytestmark = pytest.mark.browser

ORDER = {
    "event": "order.paid",
    "order": {"id": 12345678901234567890, "total": 42.5, "items": ["tea", "cake"]},
    "gift": False,
    "note": None,
}


def create_bin_from_home(page, live_server) -> str:
    """Click "Create a bin" on the home page; returns the new bin's id from the inspector URL."""
    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Create a bin").click()
    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    return page.url.rsplit("/", 1)[1]


def test_create_a_bin_and_watch_a_request_arrive(page, live_server):
    bin_id = create_bin_from_home(page, live_server)
    capture_url = f"{live_server.url}/b/{bin_id}"
    expect(page.locator("#capture-url")).to_have_text(capture_url)
    expect(page.locator("#empty-bin")).to_be_visible()
    expect(page.locator("#empty-curl")).to_contain_text(capture_url)
    expect(page.locator("#live-status")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    response = requests.post(
        f"{capture_url}/orders/7?source=shop&tag=a&tag=b%20c",
        data=json.dumps(ORDER, indent=None),
        headers={"Content-Type": "application/json", "X-Shop-Id": "shop-42"},
        timeout=5,
    )
    assert response.status_code == 200

    row = page.locator(".request-row")
    expect(row).to_have_count(1)
    expect(row).to_have_class(re.compile(r"\bfresh\b"))  # briefly highlighted
    expect(row.locator(".method")).to_have_text("POST")
    expect(row.locator(".row-path")).to_have_text("/orders/7?source=shop&tag=a&tag=b%20c")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#empty-bin")).to_be_hidden()

    row.click()
    expect(row).to_have_attribute("aria-selected", "true")
    expect(page.locator("#detail-method")).to_have_text("POST")
    expect(page.locator("#detail-path")).to_have_text("/orders/7?source=shop&tag=a&tag=b%20c")
    overview = page.locator("#panel-overview")
    expect(overview).to_contain_text(f"{capture_url}/orders/7?source=shop&tag=a&tag=b%20c")
    expect(overview).to_contain_text("127.0.0.1")
    expect(overview).to_contain_text("HTTP/1.1")

    page.get_by_role("tab", name=re.compile("Headers")).click()
    header_row = page.locator("#panel-headers tr", has_text="X-Shop-Id")
    expect(header_row.locator("td")).to_have_text("shop-42")

    page.get_by_role("tab", name=re.compile("Query")).click()
    query_rows = page.locator("#panel-query tbody tr")
    expect(query_rows).to_have_count(3)
    expect(query_rows.nth(0)).to_have_text(re.compile(r"source\s*shop"))
    expect(query_rows.nth(1)).to_have_text(re.compile(r"tag\s*a"))
    expect(query_rows.nth(2)).to_have_text(re.compile(r"tag\s*b c"))

    page.get_by_role("tab", name=re.compile("Body")).click()
    pretty = page.locator("#panel-body pre.json")
    # Pretty-printed from the text as sent: the 20-digit id keeps every digit.
    expect(pretty).to_have_text(json.dumps(ORDER, indent=2))
    expect(pretty.locator(".j-key", has_text='"order"')).to_have_count(1)

    curl = page.locator("#copy-curl").get_attribute("data-curl")
    args = shlex.split(curl.replace(" \\\n  ", " "))  # the shell's line continuations
    assert args[:3] == ["curl", "-X", "POST"]
    assert args[3] == f"{capture_url}/orders/7?source=shop&tag=a&tag=b%20c"
    headers = [args[i + 1] for i, arg in enumerate(args) if arg == "-H"]
    assert "X-Shop-Id: shop-42" in headers
    assert "Content-Type: application/json" in headers
    assert not any(h.lower().startswith(("host:", "content-length:")) for h in headers)
    assert args[args.index("--data-raw") + 1] == json.dumps(ORDER)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.get_by_role("button", name="Copy as curl").click()
    expect(page.locator("#copy-curl")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == curl
    page.get_by_role("tab", name="Raw").click()
    expect(page.locator("#curl-text")).to_have_text(curl)
    raw = page.locator("#panel-raw pre.raw")
    expect(raw).to_contain_text(
        "POST /b/" + bin_id + "/orders/7?source=shop&tag=a&tag=b%20c HTTP/1.1"
    )
    expect(raw).to_contain_text("X-Shop-Id: shop-42")
    expect(raw).to_contain_text(json.dumps(ORDER))
    assert page.js_errors == []


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl program")
def test_copy_as_curl_replays_the_same_request(page, live_server):
    """Run the copied command with the real curl: the bin captures the same request again."""
    created = live_server.create_bin()
    body = 'it\'s a "quoted" body\nwith $HOME, `backticks` and \\ backslashes'
    requests.put(
        created["url"] + "/x?q=it%27s",
        data=body.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Odd": 'a\'b "c" $d'},
        timeout=5,
    )
    requests.post(
        created["url"] + "/bin",
        data=bytes(range(256)),
        headers={"Content-Type": "application/octet-stream"},
        timeout=5,
    )
    page.goto(created["inspect_url"])
    expect(page.locator(".request-row")).to_have_count(2)
    for path in ("/x?q=it%27s", "/bin"):
        page.locator(".request-row", has_text=path).click()
        expect(page.locator("#detail-path")).to_have_text(path)
        run_copied_curl(page)
    api = f"{live_server.url}/api/bins/{created['id']}/requests"
    ids = sorted(s["id"] for s in requests.get(api, timeout=5).json())
    assert len(ids) == 4
    original_text, original_bin, replay_text, replay_bin = (
        requests.get(f"{api}/{i}", timeout=5).json() for i in ids
    )
    for original, replay in ((original_text, replay_text), (original_bin, replay_bin)):
        assert replay["method"] == original["method"]
        assert replay["path"] == original["path"]
        assert replay["query_string"] == original["query_string"]
        assert replay["body_base64"] == original["body_base64"]
        assert replay["content_type"] == original["content_type"]
    assert dict(replay_text["headers"])["X-Odd"] == 'a\'b "c" $d'


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl program")
def test_copy_as_curl_sends_header_bytes_as_received(page, live_server):
    # A header's bytes come as one character each; quoted as text, "é" (2 bytes as sent) went
    # out as 4: the terminal encodes each character again.
    created = live_server.create_bin()
    sent = {"X-Name": "José".encode(), "X-Raw": b"\xff\xfe\xc3(<b>'\\x</b>"}
    requests.post(created["url"] + "/h", data=b"{}", headers=sent, timeout=5)
    open_request(page, created["inspect_url"], "/h")
    run_copied_curl(page)
    api = f"{live_server.url}/api/bins/{created['id']}/requests"
    newest = requests.get(api, timeout=5).json()[0]["id"]
    replayed = requests.get(f"{api}/{newest}", timeout=5).json()
    headers = {name: value.encode("latin-1") for name, value in replayed["headers"]}
    assert headers["X-Name"] == sent["X-Name"]
    assert headers["X-Raw"] == sent["X-Raw"]


def test_home_lists_bins_with_a_ready_curl_line(page, live_server):
    first = live_server.create_bin(name="Payments")
    newest = live_server.create_bin(name="")
    for _ in range(3):
        requests.post(first["url"], json={"n": 1}, timeout=5)

    page.goto(live_server.url + "/")
    rows = page.locator(".bins-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".bin-name")).to_have_text("Untitled bin")
    expect(rows.nth(1).locator(".bin-name")).to_have_text("Payments")
    expect(rows.nth(1).locator(".bin-url code")).to_have_text(first["url"])
    expect(rows.nth(1).locator("td.num")).to_have_text("3")
    expect(rows.nth(1).locator("time")).to_have_text(re.compile(r"just now|\d+ s ago"))
    expect(rows.nth(0).locator("td.num")).to_have_text("0")
    expect(rows.nth(0)).to_contain_text("never")
    curl_line = page.locator("#try-curl")
    expect(curl_line).to_contain_text(f"curl -X POST {newest['url']}")
    expect(page.locator("header.topbar .server-address")).to_have_text(live_server.url)

    rows.nth(1).get_by_role("link", name="Payments").click()
    page.wait_for_url(first["inspect_url"])
    expect(page.locator(".request-row")).to_have_count(3)


def test_home_without_bins_explains_what_to_do(page, live_server):
    page.goto(live_server.url + "/")
    expect(page.locator(".empty")).to_contain_text("No bins yet")
    expect(page.locator(".try-it")).to_contain_text("Create a bin")
    expect(page.locator("#try-curl")).to_have_count(0)


def test_unknown_bin_gets_a_404_page(page, live_server):
    response = page.goto(live_server.url + "/bins/" + "a" * 26)
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("Not Found")
    expect(page.locator(".error-page")).to_contain_text("no bin with id")
    response = page.goto(live_server.url + "/bins/not-an-id")
    assert response.status == 404


def test_screenshot_of_the_home_page(page, live_server, screenshot):
    for name, count in (("Checkout webhooks", 12), ("GitHub push events", 3), ("CI smoke test", 0)):
        created = live_server.create_bin(name=name)
        for _ in range(count):
            requests.post(created["url"], json={"ok": True}, timeout=5)
    page.goto(live_server.url + "/")
    expect(page.locator(".bins-table tbody tr")).to_have_count(3)
    screenshot(page, "home.png")
