"""The README's walkthrough, as a person does it in Chromium: only clicks and typing, no API.

Create a bin, copy its URL, add a "Payment Received" webhook pointing at it, Send Test Event,
see the confirmation, then see the payload in the bin's inspector. The screenshots it takes are
the README's (docs/walkthrough-*.png).
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_walkthrough_from_the_home_page(page, live_server, screenshot):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    # 1. Create a bin, and copy its URL.
    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Create a bin").click()
    page.wait_for_url(re.compile(r"/bins/[a-z2-7]{26}$"))
    bin_id = page.url.rsplit("/", 1)[1]
    capture_url = f"{live_server.url}/b/{bin_id}"
    expect(page.locator("#capture-url")).to_have_text(capture_url)
    expect(page.locator("#live-status")).to_have_text("Live")
    page.locator(".capture").get_by_role("button", name="Copy").click()
    expect(page.locator("#toast")).to_have_text("Copied to the clipboard")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == capture_url
    screenshot(page, "walkthrough-1-bin.png")

    # 2. Go to Webhooks, Add New Webhook: Name, URL (the copied one), Event "Payment Received".
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.wait_for_url(live_server.url + "/webhooks")
    form = page.locator("#add-webhook")
    form.get_by_label("Name").fill("Payment notifications")
    form.get_by_label("URL").fill(copied)
    form.get_by_label("Event").select_option(label="Payment Received")
    form.scroll_into_view_if_needed()
    screenshot(page, "walkthrough-2-webhook.png")
    form.get_by_role("button", name="Add New Webhook").click()

    # 3. Open it (adding lands on its page; else click it in the list) and Send Test Event.
    if not re.search(r"/webhooks/\d+", page.url):
        page.get_by_role("link", name="Payment notifications").click()
    page.wait_for_url(re.compile(r"/webhooks/\d+"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment notifications")
    expect(page.locator(".webhook-summary")).to_contain_text("Payment Received")
    expect(page.locator(".webhook-summary")).to_contain_text(capture_url)
    page.get_by_role("button", name="Send Test Event").click()
    dialog = page.get_by_role("dialog", name="Test Response")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#test-outcome")).to_contain_text("Delivered: the receiver answered 200")
    screenshot(page, "walkthrough-3-test-event.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # 4. Open the bin's inspector from the home page and read the payload.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Bins").click()
    page.wait_for_url(live_server.url + "/")
    page.locator(f'tr[data-bin-id="{bin_id}"]').get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/bins/{bin_id}")
    row = page.locator(".request-row")
    expect(row).to_have_count(1)
    expect(row.locator(".method")).to_have_text("POST")
    row.click()
    page.get_by_role("tab", name=re.compile("Body")).click()
    body = page.locator("#panel-body")
    expect(body).to_contain_text('"customer_name": "John McMocked"')
    expect(body).to_contain_text('"payment_reference_code"')
    page.get_by_role("tab", name=re.compile("Headers")).click()
    headers = page.locator("#panel-headers")
    expect(headers).to_contain_text("Webhook-Signature")
    expect(headers).to_contain_text("payment_received")
    page.get_by_role("tab", name=re.compile("Body")).click()
    screenshot(page, "walkthrough-4-payload.png")

    # What the person saw is what arrived: the payload is the event's JSON object.
    shown = body.locator("pre").first.text_content()
    assert json.loads(shown)["customer_name"] == "John McMocked"
    assert page.js_errors == []
