"""The inspector's Replay editor and search box in a real browser."""

from __future__ import annotations

import json
import time

import pytest
import requests
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from hooklab.shared.signing import generate_secret, sign
from tests.browser.conftest import assert_nothing_ran, watch_console

pytestmark = pytest.mark.browser

SECRET = generate_secret()


def post_signed(url: str, payload: dict, msg_id: str = "msg_browser") -> bytes:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    requests.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(SECRET, msg_id, timestamp, body),
        },
        timeout=5,
    )
    return body


def newest(server_url: str, bin_id: str) -> tuple[dict, bytes]:
    base = f"{server_url}/api/bins/{bin_id}/requests"
    rid = requests.get(base + "?limit=1", timeout=5).json()[0]["id"]
    full = requests.get(f"{base}/{rid}", timeout=5).json()
    return full, requests.get(f"{base}/{rid}/raw", timeout=5).content


def count(server_url: str, bin_id: str) -> int:
    return len(requests.get(f"{server_url}/api/bins/{bin_id}/requests", timeout=5).json())


def test_replay_edit_a_json_field_resign_and_see_the_capture_verify(page, live_server):
    source = live_server.create_bin(secret=SECRET)
    target = live_server.create_bin(secret=SECRET, response={"status": 201, "body": "thanks"})
    post_signed(source["url"] + "/stripe", {"type": "invoice.paid", "amount": 4200})
    console = watch_console(page)

    page.goto(source["inspect_url"])
    page.locator(".request-row", has_text="/stripe").click()
    page.get_by_role("button", name="Replay").click()
    editor = page.locator("#replay")
    expect(editor).to_be_visible()
    expect(page.locator("#replay-method")).to_have_value("POST")
    names = page.locator("#replay-headers .header-name")
    expect(names.first).to_be_visible()
    assert "webhook-signature" in [
        n.lower() for n in names.evaluate_all("e => e.map(x => x.value)")
    ]
    expect(page.locator("#replay-json-mark")).to_have_text("Valid JSON")

    page.locator("#replay-url").fill(target["url"] + "/app")
    body = page.locator("#replay-body")
    body.fill('{"type": "invoice.paid", "amount": oops}')
    expect(page.locator("#replay-json-mark")).to_contain_text("Not valid JSON")
    body.fill('{"type": "invoice.paid", "amount": 1}')
    page.locator("#replay-pretty").click()
    expect(body).to_have_value('{\n  "type": "invoice.paid",\n  "amount": 1\n}')
    expect(page.locator("#replay-json-mark")).to_have_text("Valid JSON")
    expect(page.locator("#replay-resign-field")).to_be_visible()
    page.locator("#replay-resign").select_option("bin")
    page.locator("#replay-send").click()

    answer = page.locator("#replay-answer")
    expect(answer.locator(".badge")).to_have_text("201")
    expect(answer.locator("#replay-answer-body")).to_have_text("thanks")
    history = page.locator("#replay-history tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("body; re-signed")
    expect(history.first).to_contain_text(target["url"] + "/app")

    replayed, raw = newest(live_server.url, target["id"])
    assert json.loads(raw) == {"type": "invoice.paid", "amount": 1}
    assert replayed["signature"]["valid"] is True, replayed["signature"]
    headers = {n.lower(): v for n, v in replayed["headers"]}
    Webhook(SECRET).verify(raw, headers)
    assert headers["webhook-id"] == "msg_browser"

    # The URL is remembered for this bin.
    page.reload()
    page.locator(".request-row", has_text="/stripe").click()
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-url")).to_have_value(target["url"] + "/app")
    expect(page.locator("#replay-history tbody tr")).to_have_count(1)
    assert_nothing_ran(page, console)


def test_replay_unedited_is_byte_exact_and_a_pasted_secret_error_shows_by_the_field(
    page, live_server
):
    source = live_server.create_bin()
    target = live_server.create_bin()
    sent = post_signed(source["url"], {"a": [1, 2.50, "x"]})
    page.goto(source["inspect_url"])
    page.locator(".request-row").first.click()
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#replay-resign-bin")).to_be_disabled()  # this bin has no secret
    page.locator("#replay-url").fill(target["url"])
    page.locator("#replay-resign").select_option("paste")
    page.locator("#replay-secret").fill("not-a-secret")
    page.locator("#replay-send").click()
    error = page.locator('#replay-form [data-error-for="resign.secret"]')
    expect(error).to_contain_text("whsec_")
    assert count(live_server.url, target["id"]) == 0

    page.locator("#replay-resign").select_option("")
    page.locator("#replay-send").click()
    expect(page.locator("#replay-answer .badge")).to_have_text("200")
    replayed, raw = newest(live_server.url, target["id"])
    assert raw == sent
    expect(page.locator("#replay-history tbody tr").first).to_contain_text("nothing")


def test_replay_with_a_webhooks_secret(page, live_server):
    created = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Shop", "url": "http://127.0.0.1:9/x", "event": "*", "secret": SECRET},
        timeout=5,
    )
    assert created.status_code == 201, created.text
    source = live_server.create_bin()
    target = live_server.create_bin(secret=SECRET)
    post_signed(source["url"], {"n": 1})
    page.goto(source["inspect_url"])
    page.locator(".request-row").first.click()
    page.get_by_role("button", name="Replay").click()
    page.locator("#replay-url").fill(target["url"])
    page.locator("#replay-body").fill('{"n": 2}')
    option = page.locator("#replay-resign option", has_text="Shop")
    expect(option).to_have_count(1)
    page.locator("#replay-resign").select_option(option.get_attribute("value"))
    page.locator("#replay-send").click()
    expect(page.locator("#replay-answer .badge")).to_have_text("200")
    replayed, raw = newest(live_server.url, target["id"])
    assert replayed["signature"]["valid"] is True
    assert raw == b'{"n": 2}'


def test_search_filters_the_list_live_rows_included_and_highlights_safely(page, live_server):
    created = live_server.create_bin()
    url = created["url"]
    requests.post(url + "/orders", json={"note": "Invoice paid"}, timeout=5)
    requests.post(url + "/refunds", data=b"refund \xff\xfe not utf-8", timeout=5)
    requests.post(
        url + "/xss",
        data=b'invoice <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>',
        headers={"Content-Type": "text/html"},
        timeout=5,
    )
    console = watch_console(page)
    page.goto(created["inspect_url"])
    rows = page.locator(".request-row:visible")
    expect(rows).to_have_count(3)

    page.locator("#search-input").fill("invoice")
    expect(rows).to_have_count(2)
    expect(page.locator("#search-status")).to_have_text("2 matches")
    marks = page.locator(".request-row:visible mark")
    expect(marks).to_have_count(2)
    expect(marks.first).to_have_text("invoice")  # the newest: the hostile one, as text
    expect(page.locator(".request-row:visible", has_text="/xss")).to_contain_text("<img src=x")

    # Live rows: a match shows up, highlighted; a non-match stays hidden.
    requests.post(url + "/later-miss", data=b"nothing here", timeout=5)
    requests.post(url + "/later-hit", json={"memo": "another INVOICE"}, timeout=5)
    expect(page.locator(".request-row:visible", has_text="/later-hit")).to_have_count(1)
    expect(
        page.locator(".request-row:visible", has_text="/later-hit").locator("mark")
    ).to_have_text("INVOICE")
    expect(page.locator("#request-list .request-row", has_text="/later-miss")).to_be_hidden()
    expect(page.locator("#search-status")).to_have_text("3 matches")

    # Full-text syntax is only text; a non-UTF-8 body is searched without trouble.
    for q in ['"', "(", "OR", "-", "*", "NEAR("]:
        page.locator("#search-input").fill(q)
        page.locator("#search-input").press("Enter")
        expect(page.locator("#search-status")).not_to_contain_text("failed")
    page.locator("#search-input").fill("refund")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("/refunds")

    # Arrow keys skip hidden rows; Escape shows everything again.
    page.locator("#search-input").press("Escape")
    expect(rows).to_have_count(5)
    expect(page.locator(".request-row mark")).to_have_count(0)
    assert_nothing_ran(page, console)


def test_a_row_that_matches_while_a_search_is_on_its_way_stays_shown(page, live_server):
    # The search's answer is made before the live row arrives and reaches the page after the
    # row's own check: before, it replaced the matches, hid the row and miscounted.
    created = live_server.create_bin()
    url = created["url"]
    requests.post(url + "/first", json={"note": "needle one"}, timeout=5)
    page.goto(created["inspect_url"])
    expect(page.locator(".request-row")).to_have_count(1)
    held = []

    def hold_search(route):
        if "limit=1000" in route.request.url:
            held.append((route, route.fetch()))  # answered by the server now, sent later
        else:
            route.continue_()

    page.route("**/api/bins/*/requests?*", hold_search)
    page.locator("#search-input").fill("needle")
    page.locator("#search-input").press("Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent === 'Searching…'")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(20)  # lets Playwright deliver the route to the handler
    assert held, "the search never reached the server"
    requests.post(url + "/second", json={"note": "needle two"}, timeout=5)
    late = page.locator(".request-row", has_text="/second")
    expect(late).to_have_count(1)
    expect(late.locator("mark")).to_have_text("needle")  # its own check answered
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("#search-status")).to_have_text("2 matches")
    expect(page.locator(".request-row:visible")).to_have_count(2)
    expect(late).to_be_visible()
