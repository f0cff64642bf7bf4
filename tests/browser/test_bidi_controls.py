"""Bidirectional control characters (U+202E and kin) in names and captured text are shown as
marks, not applied: applied, they reorder what follows them ("fdp.exe" reads "exe.pdf"), past
the end of a name and into the page's own sentence."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import open_request

pytestmark = pytest.mark.browser

RLO = "\u202e"


def test_a_bin_name_cannot_reverse_the_home_pages_sentence(page, live_server):
    created = live_server.create_bin(name=f"Invoices {RLO}fdp.exe")
    page.goto(live_server.url + "/")
    sentence = page.locator("p", has_text="Send a request to your newest bin")
    # The character is not in the page's text: a mark stands for it.
    expect(sentence).to_have_text(
        "Send a request to your newest bin, Invoices U+202Efdp.exe, from a terminal:"
    )
    expect(sentence.locator(".control-char")).to_have_attribute(
        "title", "U+202E, a bidirectional control character: shown, not applied"
    )
    expect(page.locator(f'tr[data-bin-id="{created["id"]}"] .bin-name')).to_have_text(
        "Invoices U+202Efdp.exe"
    )
    page.goto(created["inspect_url"])
    expect(page.locator("#bin-name")).to_have_text("Invoices U+202Efdp.exe")
    assert page.js_errors == []


def test_captured_text_and_json_show_the_control_as_a_mark(page, live_server):
    created = live_server.create_bin()
    requests.post(
        created["url"] + "/text",
        data=f"file{RLO}gnp.exe and more".encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=5,
    )
    requests.post(
        created["url"] + "/json",
        data=f'{{"name": "report{RLO}fdp.exe"}}'.encode(),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    open_request(page, created["inspect_url"], "/text", "Body")
    body = page.locator("#panel-body pre")
    expect(body).to_have_text("fileU+202Egnp.exe and more")
    assert RLO not in body.inner_text()
    page.locator(".request-row", has_text="/json").click()
    expect(page.locator("#detail-path")).to_have_text("/json")
    json_body = page.locator("#panel-body pre.json")
    expect(json_body).to_contain_text('"reportU+202Efdp.exe"')
    expect(json_body.locator(".control-char")).to_have_count(1)
    # A rename shows the same, without a reload.
    page.locator("#rename-button").click()
    page.locator("#rename-input").fill(f"Renamed {RLO}txt")
    page.locator("#rename-input").press("Enter")
    expect(page.locator("#bin-name")).to_have_text("Renamed U+202Etxt")
    assert page.js_errors == []


def test_a_webhook_name_shows_the_mark_on_the_list_and_its_page(page, live_server):
    target = live_server.create_bin()
    webhook = live_server.add_webhook(
        name=f"Orders {RLO}deliver", url=target["url"], event="payment_received"
    )
    page.goto(live_server.url + "/webhooks")
    expect(page.locator(".webhook-name")).to_have_text("Orders U+202Edeliver")
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    expect(page.locator("h1")).to_have_text("Orders U+202Edeliver")
    assert page.js_errors == []
