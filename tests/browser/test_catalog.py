"""The catalog in a real browser: the inspector's check badge, schemas and groups of events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml
from playwright.sync_api import expect

from tests.browser.conftest import assert_nothing_ran, watch_console

pytestmark = pytest.mark.browser

PETSTORE = Path(__file__).resolve().parents[1] / "data" / "petstore-webhooks.yaml"
HOSTILE_KEY = '<img src=x onerror="window.__pwned=1">'


def post(url: str, body: dict, event: str | None) -> None:
    headers = {"X-Hooklab-Event": event} if event else {}
    answer = requests.post(url, json=body, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text


def test_the_inspector_shows_whether_a_request_matches_its_event(page, live_server, screenshot):
    base = live_server.url
    created = requests.post(f"{base}/api/bins", json={"name": "Checks"}, timeout=5).json()
    example = requests.get(f"{base}/api/events/payment_received", timeout=5).json()["payload"]
    post(created["url"] + "/good", example, "payment_received")
    bad = {**example, "payment_total_raw": "4200", HOSTILE_KEY: 1}
    del bad["customer_name"]
    post(created["url"] + "/bad", bad, "payment_received")
    post(created["url"] + "/plain", {"hello": "world"}, None)
    console = watch_console(page)

    page.goto(created["inspect_url"])
    page.locator(".request-row", has_text="/good").click()
    expect(page.locator("#detail-check")).to_have_text("matches Payment Received")
    expect(page.locator("#check-report")).to_contain_text("matches the schema of Payment Received")

    page.locator(".request-row", has_text="/bad").click()
    badge = page.locator("#detail-check .badge")
    expect(badge).to_have_text("2 problems")
    expect(badge).to_have_class("badge check-badge bad")
    items = page.locator("#check-report .check-problems li")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_have_text("/customer_name required key is missing")
    expect(items.nth(1)).to_have_text("/payment_total_raw expected number, got string")
    expect(items.nth(2).locator(".check-path")).to_have_text("/" + HOSTILE_KEY)
    expect(items.nth(2)).to_contain_text("warning: unexpected key")
    screenshot(page, "check-badge.png")

    page.locator(".request-row", has_text="/plain").click()
    expect(page.locator("#detail-path")).to_have_text("/plain")
    expect(page.locator("#detail-check")).to_be_hidden()
    expect(page.locator("#check-report")).to_have_count(0)
    assert_nothing_ran(page, console)


def test_a_request_that_cannot_be_checked_says_why(page, live_server):
    base = live_server.url
    console = watch_console(page)
    created = requests.post(f"{base}/api/bins", json={}, timeout=5).json()
    post(created["url"] + "/unknown", {"a": 1}, "no_such_event")
    requests.post(
        created["url"] + "/text",
        data=b"not json",
        headers={"X-Hooklab-Event": "payment_received", "Content-Type": "text/plain"},
        timeout=5,
    )
    page.goto(created["inspect_url"])
    page.locator(".request-row", has_text="/unknown").click()
    expect(page.locator("#detail-check")).to_have_text("Not checked")
    expect(page.locator("#check-report")).to_contain_text("No event 'no_such_event'")
    page.locator(".request-row", has_text="/text").click()
    expect(page.locator("#detail-path")).to_have_text("/text")
    expect(page.locator("#check-report")).to_contain_text("The body is not JSON")
    # An event added meanwhile is found (the page reads the catalog again before saying no).
    event = {"slug": "no_such_event", "name": "Now there", "description": "d", "payload": {"a": 1}}
    assert requests.post(f"{base}/api/events", json=event, timeout=5).status_code == 201
    post(created["url"] + "/later", {"a": 1}, "no_such_event")
    page.locator(".request-row", has_text="/later").click()
    expect(page.locator("#detail-check")).to_have_text("matches Now there")
    assert page.js_errors == []
    # Said without asking the server: no refused call shows in the console (it did, as 404).
    assert console == [], console


def test_the_webhooks_page_shows_schemas_and_groups_imported_events(page, live_server):
    base = live_server.url
    document = yaml.safe_load(PETSTORE.read_text())
    imported = requests.post(f"{base}/api/events/import?prefix=oai.", json=document, timeout=10)
    assert imported.status_code == 200, imported.text
    page.goto(f"{base}/webhooks")
    rows = page.locator(".events-table tbody tr")
    expect(rows).to_have_count(14)
    schema = json.loads(rows.first.locator("pre.schema").inner_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "payment_total" in schema["required"]

    page.locator(".event-groups a", has_text="oai.").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("New pet")
    expect(rows.first.locator("pre.schema")).to_contain_text("#/$defs/Pet")
    expect(page.locator(".event-groups a[aria-current=page]")).to_contain_text("oai.")
    expect(page.locator("#webhook-event optgroup[label='oai.'] option")).to_have_count(2)
    assert page.js_errors == []
