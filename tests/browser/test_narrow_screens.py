"""Every page on a phone-sized screen (375 px): nothing makes the page scroll sideways."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WIDE = """() => [...document.querySelectorAll("body *")]
  .filter((node) => node.getBoundingClientRect().right > innerWidth + 0.5)
  .filter((node) => !node.closest(".table-wrap, pre, .code-line, .tabs, [hidden]"))
  .map((node) => `${node.tagName.toLowerCase()}#${node.id}.${node.className}: `
    + `${Math.round(node.getBoundingClientRect().width)} px`)"""


def assert_no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.evaluate("innerWidth"), (width, page.evaluate(WIDE))


@pytest.fixture
def phone(page):
    page.set_viewport_size({"width": 375, "height": 740})
    return page


def test_home_fits_a_phone(phone, live_server):
    live_server.create_bin(name="A bin with a name")
    phone.goto(live_server.url + "/")
    expect(phone.locator("h1").first).to_be_visible()
    assert_no_sideways_scroll(phone)


def test_webhooks_fit_a_phone(phone, live_server):
    target = live_server.create_bin()
    webhook = live_server.add_webhook(name="Narrow", url=target["url"], event="payment_received")
    phone.goto(live_server.url + "/webhooks")
    expect(phone.locator(".events-table")).to_be_visible()
    assert_no_sideways_scroll(phone)
    phone.goto(live_server.url + "/webhooks/new")
    phone.get_by_text("More options").click()
    assert_no_sideways_scroll(phone)
    phone.goto(live_server.url + "/webhooks/999")  # the error page
    assert_no_sideways_scroll(phone)

    phone.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    phone.get_by_role("button", name="Send Test Event").click()
    phone.get_by_role("dialog").get_by_role("button", name="Close").click()
    delivery = phone.locator("#delivery-log .delivery").first
    delivery.locator("> summary").click()
    delivery.locator(".attempt > summary").first.click()
    assert_no_sideways_scroll(phone)
    assert phone.js_errors == []


def test_the_inspector_fits_a_phone_with_its_settings_open(phone, live_server):
    created = live_server.create_bin()
    requests.post(created["url"] + "/hook?x=1", json={"hello": "world"}, timeout=5)
    phone.goto(created["inspect_url"])
    expect(phone.locator("#detail-path")).to_have_text("/hook?x=1")
    assert_no_sideways_scroll(phone)
    phone.get_by_text("Response settings").click()
    expect(phone.locator("#forward-url")).to_be_visible()
    assert_no_sideways_scroll(phone)
    assert phone.js_errors == []
