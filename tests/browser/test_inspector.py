"""The inspector in a real browser: body views, keyboard, settings, live stream, bin actions."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from hooklab.shared.signing import generate_secret, sign
from tests.browser.conftest import open_request, watch_console

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings, request):
    """The shared test settings, changed by `@pytest.mark.parametrize("settings", [...])`."""
    return settings.replace(**getattr(request, "param", {}))


def test_binary_body_shows_as_hex(page, live_server):
    created = live_server.create_bin()
    payload = bytes(range(256)) + b"\xff\xfe"
    requests.post(
        created["url"] + "/blob",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
        timeout=5,
    )
    open_request(page, created["inspect_url"], "/blob", "Body")
    hex_dump = page.locator("#panel-body pre.hex")
    expect(hex_dump).to_contain_text(
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    )
    expect(hex_dump).to_contain_text("00000040  40 41 42 43 44 45 46 47  48 49 4a 4b 4c 4d 4e 4f")
    expect(hex_dump).to_contain_text("|@ABCDEFGHIJKLMNO|")
    expect(hex_dump).to_contain_text("00000100  ff fe")
    expect(page.locator("#panel-body")).to_contain_text("258 B")

    page.get_by_role("tab", name="Raw").click()
    expect(page.locator("#panel-raw")).to_contain_text("The body is binary (258 B)")
    link = page.locator("#panel-raw a", has_text="Download the body")
    href = link.get_attribute("href")
    assert requests.get(live_server.url + href, timeout=5).content == payload
    assert page.js_errors == []


def test_form_body_shows_as_a_table(page, live_server):
    created = live_server.create_bin()
    requests.put(
        created["url"] + "/signup",
        data={"name": "Ada Lovelace", "tags": ["math", "engines"], "empty": ""},
        timeout=5,
    )
    open_request(page, created["inspect_url"], "/signup", "Body")
    rows = page.locator("#panel-body table.pairs tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(0).locator("th")).to_have_text("name")
    expect(rows.nth(0).locator("td")).to_have_text("Ada Lovelace")
    expect(rows.nth(1).locator("td")).to_have_text("math")
    expect(rows.nth(2).locator("td")).to_have_text("engines")
    expect(rows.nth(3).locator("th")).to_have_text("empty")
    expect(page.locator("#panel-body pre")).to_have_count(0)


def test_multipart_file_has_a_download_link(page, live_server):
    created = live_server.create_bin()
    content = b"id,total\n1,42.50\n"
    requests.post(
        created["url"] + "/upload",
        data={"title": "Q3 report"},
        files={"report": ("q3.csv", content, "text/csv")},
        timeout=5,
    )
    open_request(page, created["inspect_url"], "/upload", "Body")
    expect(page.locator("#panel-body table.pairs tbody tr")).to_have_text(
        re.compile(r"title\s*Q3 report")
    )
    file_row = page.locator("#panel-body table.files tbody tr")
    expect(file_row).to_have_count(1)
    expect(file_row.locator("td").nth(0)).to_have_text("report")
    expect(file_row.locator("td").nth(1)).to_have_text("q3.csv")
    expect(file_row.locator("td").nth(2)).to_have_text("text/csv")
    with page.expect_download() as info:
        file_row.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == "q3.csv"
    assert Path(download.path()).read_bytes() == content


def test_text_body_and_empty_body(page, live_server):
    created = live_server.create_bin()
    requests.post(
        created["url"] + "/note",
        data=b"line one\nline two",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    requests.get(created["url"] + "/ping", timeout=5)
    open_request(page, created["inspect_url"], "/note", "Body")
    expect(page.locator("#panel-body pre.code")).to_have_text("line one\nline two")
    expect(page.locator("#download-raw")).to_be_visible()
    page.locator(".request-row", has_text="/ping").click()
    expect(page.locator("#panel-body")).to_contain_text("No body.")
    expect(page.locator("#count-query")).to_have_text("")
    # Nothing to download: no button that saves an empty file.
    expect(page.locator("#download-raw")).to_be_hidden()


def test_arrow_keys_move_the_selection(page, live_server):
    created = live_server.create_bin()
    for path in ("/first", "/second", "/third"):
        requests.get(created["url"] + path, timeout=5)
    page.goto(created["inspect_url"])
    rows = page.locator(".request-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("aria-selected", "true")  # newest, chosen on load
    expect(page.locator("#detail-path")).to_have_text("/third")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#detail-path")).to_have_text("/second")
    expect(rows.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # already at the oldest: stays
    expect(page.locator("#detail-path")).to_have_text("/first")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#detail-path")).to_have_text("/second")
    expect(rows.nth(0)).to_have_attribute("aria-selected", "false")
    # The selection is in the address, so a reload comes back to it.
    page.reload()
    expect(page.locator("#detail-path")).to_have_text("/second")
    # After clicking a tab, Up/Down still step through the requests (Left/Right switch tabs).
    page.get_by_role("tab", name=re.compile("Headers")).click()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#detail-path")).to_have_text("/first")
    expect(page.get_by_role("tab", name=re.compile("Headers"))).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name=re.compile("Query"))).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator("#detail-path")).to_have_text("/first")


def test_response_settings_are_saved_and_errors_shown_next_to_the_field(page, live_server):
    created = live_server.create_bin()
    page.goto(created["inspect_url"])
    page.locator("#settings summary").click()
    page.fill("#response-status", "999")
    page.get_by_role("button", name="Save settings").click()
    status_error = page.locator('[data-error-for="response.status"]')
    expect(status_error).to_be_visible()
    # Named by the field's label, as the page calls it, not by the API's path for it.
    expect(status_error).to_have_text(
        "Status must be a whole number from 200 to 599 (a 1xx status is not a final answer: "
        "the client would wait for one that never comes)."
    )
    expect(page.locator("#response-status")).to_have_attribute("aria-invalid", "true")

    page.fill("#response-status", "201")
    page.fill("#response-headers", "no colon here")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator('[data-error-for="response.headers"]')).to_contain_text("Line 1")
    expect(status_error).to_be_hidden()

    page.fill("#response-headers", "X-Reply: yes\nCache-Control: no-store")
    page.fill("#response-body", "created!")
    page.fill("#response-delay", "5")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    expect(page.locator("#settings-summary")).to_have_text("answers 201 after 5 ms · custom body")

    answer = requests.post(created["url"], data=b"x", timeout=5)
    assert answer.status_code == 201
    assert answer.text == "created!"
    assert answer.headers["X-Reply"] == "yes"
    assert answer.headers["Cache-Control"] == "no-store"

    page.reload()
    expect(page.locator("#response-status")).to_have_value("201")
    expect(page.locator("#response-headers")).to_have_value("X-Reply: yes\nCache-Control: no-store")
    expect(page.locator("#response-body")).to_have_value("created!")


def test_every_bad_response_setting_is_shown_at_once_and_nothing_is_saved(page, live_server):
    created = live_server.create_bin()
    page.goto(created["inspect_url"])
    page.locator("#settings summary").click()
    page.fill("#response-status", "999")
    page.fill("#response-delay", "-5")
    page.fill("#bin-secret", "not a key")
    page.fill("#response-body", "kept in the form")
    page.get_by_role("button", name="Save settings").click()
    for field in ("response.status", "response.delay_ms", "secret"):
        expect(page.locator(f'[data-error-for="{field}"]')).to_be_visible()
    expect(page.locator('[data-error-for="response.delay_ms"]')).to_contain_text("Delay")
    expect(page.locator('[data-error-for="response.body"]')).to_be_hidden()
    expect(page.locator("#response-status")).to_be_focused()  # the first one
    for field in ("#response-status", "#response-delay", "#bin-secret"):
        expect(page.locator(field)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#response-body")).to_have_value("kept in the form")
    stored = requests.get(
        f"{live_server.url}/api/bins/{created['id']}",
        timeout=5,
        headers={"Accept": "application/json"},
    ).json()
    assert (stored["response"]["status"], stored["response"]["body"]) == (200, None)

    page.fill("#response-status", "202")
    page.fill("#response-delay", "0")
    page.fill("#bin-secret", "")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    expect(page.locator(".field-error:visible")).to_have_count(0)


def test_rename_clear_and_delete(page, live_server):
    created = live_server.create_bin(name="Old name")
    api = f"{live_server.url}/api/bins/{created['id']}"
    for _ in range(2):
        requests.post(created["url"], json={}, timeout=5)
    page.goto(created["inspect_url"])
    expect(page.locator(".request-row")).to_have_count(2)

    page.get_by_role("button", name="Rename").click()
    page.fill("#rename-input", "Orders")
    page.locator("#rename-form").get_by_role("button", name="Save").click()
    expect(page.locator("#bin-name")).to_have_text("Orders")
    assert requests.get(api, timeout=5).json()["name"] == "Orders"

    page.get_by_role("button", name="Clear").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".request-row")).to_have_count(2)
    page.get_by_role("button", name="Clear").click()
    dialog.get_by_role("button", name="Clear requests").click()
    expect(page.locator(".request-row")).to_have_count(0)
    expect(page.locator("#empty-bin")).to_be_visible()
    assert requests.get(api + "/requests", timeout=5).json() == []

    page.get_by_role("button", name="Delete bin").click()
    dialog.get_by_role("button", name="Delete bin").click()
    page.wait_for_url(live_server.url + "/")
    assert requests.get(api, timeout=5).status_code == 404


def test_a_bin_deleted_elsewhere_says_so(page, live_server):
    created = live_server.create_bin()
    page.goto(created["inspect_url"])
    expect(page.locator("#live-status")).to_have_text("Live")
    requests.delete(f"{live_server.url}/api/bins/{created['id']}", timeout=5)
    expect(page.locator("#deleted-banner")).to_be_visible()
    expect(page.locator("#live-status")).to_have_text("Deleted")


def test_live_stream_reconnects_and_misses_nothing(page, live_server):
    created = live_server.create_bin()
    sockets = []

    def forward(ws):
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/bins/"), forward)
    page.goto(created["inspect_url"])
    expect(page.locator("#live-status")).to_have_text("Live")
    first = requests.post(created["url"] + "/one", timeout=5).json()["id"]
    expect(page.locator(".request-row")).to_have_count(1)

    sockets[0].close()  # the page's side drops, as when a laptop sleeps or a proxy times out
    requests.post(created["url"] + "/two", timeout=5)  # arrives while the page is offline
    expect(page.locator(".request-row")).to_have_count(2)
    expect(page.locator(".request-row").nth(0)).to_contain_text("/two")
    expect(page.locator("#live-status")).to_have_text("Live")
    assert len(sockets) == 2
    assert sockets[1].url.endswith(f"after={first}")
    requests.post(created["url"] + "/three", timeout=5)
    expect(page.locator(".request-row")).to_have_count(3)


def test_load_older_requests(page, live_server):
    created = live_server.create_bin()
    with requests.Session() as session:
        for number in range(105):
            session.get(f"{created['url']}/n{number}", timeout=5)
    page.goto(created["inspect_url"])
    rows = page.locator(".request-row")
    expect(rows).to_have_count(100)
    expect(rows.nth(0)).to_contain_text("/n104")
    # Not "100 requests": the bin holds 105.
    expect(page.locator("#request-count")).to_have_text("100 newest requests")
    page.get_by_role("button", name="Load older requests").click()
    expect(rows).to_have_count(105)
    expect(rows.nth(104)).to_contain_text("/n0")
    expect(page.locator("#load-older")).to_be_hidden()
    expect(page.locator("#request-count")).to_have_text("105 requests")


def test_signature_check_is_shown(page, live_server):
    secret = generate_secret()
    created = live_server.create_bin(secret=secret)
    body = b'{"type": "invoice.paid"}'
    timestamp = int(time.time())
    good = {
        "Content-Type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, "msg_1", timestamp, body),
    }
    requests.post(created["url"] + "/good", data=body, headers=good, timeout=5)
    bad = {**good, "webhook-signature": sign(generate_secret(), "msg_1", timestamp, body)}
    requests.post(created["url"] + "/bad", data=body, headers=bad, timeout=5)

    open_request(page, created["inspect_url"], "/good")
    expect(page.locator("#detail-signature")).to_have_text("Signature valid")
    expect(page.locator("#panel-overview")).to_contain_text("Signature check")
    page.locator(".request-row", has_text="/bad").click()
    expect(page.locator("#detail-signature .badge.bad")).to_contain_text("Signature invalid")
    expect(page.locator("#settings-summary")).to_contain_text("checks signatures")


@pytest.mark.parametrize("settings", [{"max_body_bytes": 1024}], indirect=True)
def test_truncated_body_is_said(page, live_server):
    created = live_server.create_bin()
    answer = requests.post(created["url"] + "/big", data=b"x" * 4096, timeout=5)
    assert answer.status_code == 413
    open_request(page, created["inspect_url"], "/big", "Body")
    expect(page.locator("#panel-body .banner.warn")).to_contain_text("Truncated")
    expect(page.locator("#panel-overview .banner.warn")).to_have_count(1)
    # No body was kept: no link offers one (they gave an empty file).
    expect(page.locator("#download-raw")).to_be_hidden()
    page.get_by_role("tab", name="Raw").click()
    expect(page.locator("#panel-raw")).to_contain_text("was not kept")
    expect(page.get_by_text("Download the body exactly as received")).to_have_count(0)


def test_a_link_to_a_request_past_the_first_page_opens_that_request(page, live_server):
    created = live_server.create_bin()
    with requests.Session() as session:
        for number in range(130):  # the first page holds the newest 100
            session.post(f"{created['url']}/n{number}", data=b"x", timeout=5)
    api = f"{live_server.url}/api/bins/{created['id']}/requests"
    oldest = min(r["id"] for r in requests.get(f"{api}?limit=1000", timeout=5).json())
    page.goto(f"{created['inspect_url']}#request-{oldest}")
    expect(page.locator("#detail-path")).to_have_text("/n0")
    expect(page.locator(f"#request-row-{oldest}")).to_have_attribute("aria-selected", "true")
    assert page.url.endswith(f"#request-{oldest}")

    # A request that is not in the bin (here: another bin's): said, and no other request
    # shown instead.
    other = live_server.create_bin()
    elsewhere = int(
        requests.post(other["url"], data=b"x", timeout=5).headers["X-Hooklab-Request-Id"]
    )
    page.goto("about:blank")
    page.goto(f"{created['inspect_url']}#request-{elsewhere}")
    expect(page.locator("#detail-error")).to_have_text(
        f"Request #{elsewhere} is no longer kept (deleted, cleared, or evicted as the bin "
        "filled up). Pick another request in the list."
    )
    expect(page.locator("#detail")).to_be_hidden()
    assert page.js_errors == []


def test_a_files_table_with_long_names_keeps_size_and_link_on_one_line(page, live_server):
    created = live_server.create_bin()
    long_name = "field_" + "x" * 80
    requests.post(
        created["url"] + "/upload",
        files={
            long_name: ("report_" + "y" * 80 + ".txt", b"25 bytes of plain text...", "text/plain")
        },
        timeout=5,
    )
    open_request(page, created["inspect_url"], "/upload", "Body")
    row = page.locator("#panel-body table.files tbody tr")
    lines = row.evaluate(
        """(tr) => [...tr.cells].slice(3).map((cell) => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        })"""
    )
    assert lines == [1, 1]  # "25 B" and "Download", each on one line


def test_screenshot_of_the_inspector(page, live_server, screenshot):
    created = live_server.create_bin(name="Checkout webhooks")
    url = created["url"]
    requests.get(url + "/health", timeout=5)
    requests.put(url + "/customers/cus_81", data={"email": "ada@example.com"}, timeout=5)
    requests.delete(url + "/subscriptions/sub_42", timeout=5)
    requests.post(
        url + "/webhooks/payments?attempt=1",
        json={
            "id": "evt_3Qx2",
            "type": "payment.succeeded",
            "created": 1767225600,
            "data": {
                "payment_id": "pay_7781",
                "amount": 4250,
                "currency": "eur",
                "captured": True,
                "customer": {"id": "cus_81", "email": "ada@example.com"},
                "items": [{"sku": "tea-earl-grey", "qty": 2}, {"sku": "cake-lemon", "qty": 1}],
                "refunded_at": None,
            },
        },
        headers={"X-Shop-Id": "shop-42", "User-Agent": "hooklab/0.1.0"},
        timeout=5,
    )
    requests.post(url + "/webhooks/payments?attempt=1", json={"id": "evt_3Qx3"}, timeout=5)
    page.goto(created["inspect_url"])
    page.locator(".request-row", has_text="/webhooks/payments").nth(1).click()
    page.get_by_role("tab", name=re.compile("Body")).click()
    expect(page.locator("#panel-body pre.json")).to_contain_text("payment.succeeded")
    page.mouse.move(0, 0)
    screenshot(page, "inspector.png")


@pytest.mark.parametrize("settings", [{"threads": 4}], indirect=True)
def test_a_page_refused_for_lack_of_threads_backs_off_and_comes_live_later(page, live_server):
    from hooklab.client.http import LiveSocket

    target = live_server.create_bin()
    url = f"{live_server.ws_url}/ws/bins/{target['id']}"
    # reserved(4) = 1: three waiting connections take every place.
    held = [LiveSocket.connect(url) for _ in range(3)]
    try:
        page.goto(target["inspect_url"])
        status = page.locator("#live-status")
        expect(status).to_contain_text(re.compile(r"retrying in [4-9] s"))
    finally:
        for ws in held:
            ws.close()
    expect(status).to_have_text("Live", timeout=15000)
    requests.post(target["url"], data=b"after the wait", timeout=5)
    expect(page.locator("#request-list")).to_contain_text("POST")
    assert page.js_errors == []


def _big_json(size: int) -> bytes:
    """A compact JSON array of about `size` bytes: many small objects, many tokens."""
    item = {"id": 0, "name": "item", "tags": ["a", "b"], "ok": True, "price": 12.5}
    one = len(json.dumps(item, separators=(",", ":"))) + 1
    items = [{**item, "id": i} for i in range(size // one)]
    return json.dumps(items, separators=(",", ":")).encode()


@pytest.mark.parametrize("kind", ["json", "text"])
def test_a_big_body_shows_a_bounded_part_and_stays_fast(page, live_server, kind):
    created = live_server.create_bin()
    if kind == "json":
        body, content_type = _big_json(8 * 1024 * 1024), "application/json"
    else:
        body = b"".join(b"line %07d of a long log\n" % n for n in range(8 * 1024 * 1024 // 25))
        content_type = "text/plain"
    requests.post(
        created["url"] + "/big", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    listed = requests.get(f"{live_server.url}/api/bins/{created['id']}/requests", timeout=5)
    rid = listed.json()[0]["id"]
    console = watch_console(page)
    read: list[int] = []  # the sizes of the page's reads of this request
    page.on(
        "response",
        lambda r: read.append(len(r.body())) if f"/requests/{rid}?" in r.url else None,
    )
    open_request(page, created["inspect_url"], "/big", "Body")

    size = f"{len(body) / 1024 / 1024:.1f} MiB"
    raw_href = f"/api/bins/{created['id']}/requests/{rid}/raw"
    note = page.locator("#panel-body .body-cut")
    expect(note).to_contain_text(f"Showing the first 256.0 KiB of {size}")
    download = note.get_by_role("link", name="Download the whole body")
    expect(download).to_have_attribute("href", raw_href)
    shown = page.locator("#panel-body pre.code")
    expect(shown).to_have_count(1)
    expect(shown).to_contain_text("item" if kind == "json" else "line 0000000 of a long log")
    # Above the bound there is no span per token: the page stays small.
    assert page.evaluate("document.getElementsByTagName('*').length") < 2000
    assert page.locator("#panel-body pre.code span").count() == 0
    # The body is nowhere on the page in full (Body, Raw and the curl command are each bounded).
    assert page.evaluate("document.body.textContent.length") < 3 * 300 * 1024
    assert len(page.locator("#copy-curl").get_attribute("data-curl")) < 4096

    page.get_by_role("tab", name="Raw").click()
    expect(page.locator("#panel-raw .body-cut")).to_contain_text(f"of {size}")
    curl = page.locator("#curl-text")
    expect(curl).to_contain_text(f"--data-binary @request-{rid}.bin")
    expect(page.locator("#panel-raw")).to_contain_text(f"request-{rid}.bin")
    assert requests.get(live_server.url + raw_href, timeout=30).content == body

    # The page answers at once: the arrow keys and the tabs still work.
    page.get_by_role("tab", name="Overview").click()
    expect(page.locator("#panel-overview")).to_contain_text(f"{len(body)} bytes")
    assert page.js_errors == []
    assert console == []
    # The page read the start of the body, not 8 MiB three times over (text, base64, JSON).
    assert read and max(read) < 3 * 1024 * 1024, read

    # The replay editor sends such a body as captured: it is not put in the box half read.
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-body-note")).to_contain_text("sent as captured")
    expect(page.locator("#replay-body")).to_be_disabled()


def test_a_json_body_below_the_bound_is_coloured_whole(page, live_server):
    created = live_server.create_bin()
    body = _big_json(40 * 1024)
    requests.post(
        created["url"] + "/mid", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    open_request(page, created["inspect_url"], "/mid", "Body")
    expect(page.locator("#panel-body pre.json span.j-key").first).to_have_text('"id"')
    expect(page.locator("#panel-body .body-cut")).to_have_count(0)
    text = page.locator("#panel-body pre.json").inner_text()
    assert json.loads(text) == json.loads(body)
    assert "--data-raw" in page.locator("#copy-curl").get_attribute("data-curl")


@pytest.mark.parametrize("settings", [{"max_requests_per_bin": 5}], indirect=True)
def test_rows_the_bin_no_longer_keeps_leave_the_list(page, live_server):
    created = live_server.create_bin()
    for number in range(3):
        requests.get(f"{created['url']}/old{number}", timeout=5)
    page.goto(created["inspect_url"])
    rows = page.locator(".request-row")
    expect(rows).to_have_count(3)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    with requests.Session() as session:
        for number in range(6):
            session.get(f"{created['url']}/new{number}", timeout=5)
    expect(page.locator(".request-row", has_text="/new5")).to_have_count(1)
    expect(rows).to_have_count(5)
    expect(page.locator("#request-count")).to_have_text("5 requests")
    kept = requests.get(f"{live_server.url}/api/bins/{created['id']}/requests", timeout=5).json()
    assert len(kept) == 5
    shown = [int(row.get_attribute("data-id")) for row in rows.all()]
    assert shown == [request["id"] for request in kept]
    # The keyboard still walks the list that is left.
    page.locator(".request-row", has_text="/new3").click()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#detail-path")).to_have_text("/new2")
    assert page.js_errors == []


def test_a_big_json_body_naming_its_event_is_still_checked(page, live_server):
    # Read with ?body_limit, it had no `json` on the page, which then said "not JSON".
    created = live_server.create_bin()
    example = requests.get(f"{live_server.url}/api/events/payment_received", timeout=5).json()
    body = json.dumps({**example["payload"], "padding": "x" * (1024 * 1024 + 10)})
    requests.post(
        created["url"] + "/bigcheck",
        data=body,
        headers={"Content-Type": "application/json", "X-Hooklab-Event": "payment_received"},
        timeout=30,
    )
    open_request(page, created["inspect_url"], "/bigcheck", "Overview")
    expect(page.locator("#detail-check")).not_to_have_text("Not checked")
    expect(page.locator("#check-report")).not_to_contain_text("not JSON")


def test_the_request_being_read_says_when_the_bin_no_longer_keeps_it(page, tmp_path):
    from tests.conftest import make_settings, start_live_server

    live = start_live_server(make_settings(tmp_path, max_requests_per_bin=3))
    try:
        created = live.create_bin()
        requests.post(created["url"] + "/first", data="1", timeout=5)
        open_request(page, created["inspect_url"], "/first", "Overview")
        for n in range(3):
            requests.post(created["url"] + f"/later{n}", data="x", timeout=5)
        expect(page.locator("#detail-error")).to_contain_text("is no longer kept")
        expect(page.locator("#detail")).to_be_hidden()
    finally:
        live.stop()
