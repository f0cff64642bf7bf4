"""Small UI fixes in a real browser: focus after "Show older deliveries", the cut-body note
when both sizes round alike, and the replay editor's JSON mark on a form body."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import open_request, watch_console

pytestmark = pytest.mark.browser


def test_show_older_deliveries_moves_focus_to_the_first_new_delivery(page, live_server):
    target = live_server.create_bin()
    webhook = live_server.add_webhook(
        name="Many deliveries", url=target["url"], event="payment_received"
    )
    # One more than a page of the log (25): the button shows, and one press shows them all.
    for _ in range(26):
        sent = requests.post(f"{live_server.url}/api/webhooks/{webhook['id']}/test", timeout=10)
        assert sent.json()["ok"], sent.text
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    deliveries = page.locator("#delivery-log .delivery")
    expect(deliveries).to_have_count(25)
    more = page.get_by_role("button", name="Show older deliveries")
    more.focus()
    page.keyboard.press("Enter")
    expect(deliveries).to_have_count(26)
    expect(more).to_be_hidden()
    # Not <body>: the first delivery just shown has focus, and Enter opens it.
    first_new = deliveries.nth(25)
    expect(first_new.locator("> summary")).to_be_focused()
    page.keyboard.press("Enter")
    expect(first_new).to_have_attribute("open", "")
    assert page.js_errors == []


def test_a_body_just_over_the_display_limit_says_how_much_in_bytes(page, live_server):
    created = live_server.create_bin()
    size = 256 * 1024 + 6  # 256.0 KiB both, rounded: the note gives the bytes instead
    requests.post(
        created["url"] + "/just-over",
        data=b"x" * size,
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    console = watch_console(page)
    page.goto(created["inspect_url"])
    page.locator(".request-row", has_text="/just-over").click()
    expect(page.locator("#detail-path")).to_have_text("/just-over")
    page.get_by_role("tab", name="Body").click()
    expected = "Showing the first 262,144 of 262,150 bytes — Download the whole body"
    expect(page.locator("#panel-body .body-cut")).to_have_text(expected)
    page.get_by_role("tab", name="Raw").click()
    expect(page.locator("#panel-raw .body-cut")).to_contain_text("of 262,150 bytes")
    expect(page.locator("#panel-raw .body-cut")).not_to_contain_text("KiB of")
    assert page.js_errors == []
    assert console == []


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
def test_the_replay_editor_does_not_call_a_form_body_invalid_json(page, live_server, kind):
    created = live_server.create_bin()
    if kind == "urlencoded":
        requests.post(created["url"] + "/form", data={"name": "Ada", "plan": "pro"}, timeout=5)
    else:
        requests.post(
            created["url"] + "/form",
            data={"name": "Ada"},
            files={"notes": ("notes.txt", b"plain text", "text/plain")},
            timeout=5,
        )
    open_request(page, created["inspect_url"], "/form")
    page.get_by_role("button", name="Replay").click()
    body = page.locator("#replay-body")
    expect(body).to_be_enabled()
    expect(body).to_have_value("name=Ada&plan=pro" if kind == "urlencoded" else re.compile("Ada"))
    mark = page.locator("#replay-json-mark")
    expect(mark).to_have_text("")
    body.fill(body.input_value() + "&more=1")
    expect(mark).to_have_text("")

    # Sent as JSON from now on (the Content-Type changed): then the mark speaks.
    names = page.locator("#replay-headers .header-name")
    index = [n.lower() for n in names.evaluate_all("e => e.map(x => x.value)")].index(
        "content-type"
    )
    page.locator("#replay-headers .header-value").nth(index).fill("application/json")
    expect(mark).to_contain_text("Not valid JSON")
    page.locator("#replay-headers .header-value").nth(index).fill("text/plain")
    expect(mark).to_have_text("")
    # Pretty-print JSON is choosing JSON too.
    page.locator("#replay-pretty").click()
    expect(mark).to_contain_text("Not valid JSON")
    assert page.js_errors == []
