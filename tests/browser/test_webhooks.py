"""The manager in a real browser: add a webhook into a bin through the form, Send Test Event,
see the confirmation, and watch the payload arrive live in the bin's inspector."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
import requests
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_add_a_webhook_into_a_bin_send_a_test_event_and_see_it_arrive(
    browser, page, live_server, screenshot
):
    base = live_server.url
    page.goto(f"{base}/webhooks")
    expect(page.get_by_role("heading", name="Add New Webhook")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Payments into my bin")
    page.get_by_role("button", name="Create a bin for me").click()
    url_field = page.get_by_label("URL", exact=True)
    expect(url_field).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/b/[a-z2-7]{26}$"))
    bin_url = url_field.input_value()
    bin_id = bin_url.rsplit("/", 1)[1]
    page.get_by_label("Event", exact=True).select_option(label="Payment Received")
    page.get_by_role("button", name="Add New Webhook").click()

    expect(page).to_have_url(re.compile(r"/webhooks/\d+\?created=1$"))
    expect(page.get_by_role("heading", name="Payments into my bin")).to_be_visible()
    expect(page.locator(".webhook-summary")).to_contain_text("Payment Received")
    expect(page.locator(".webhook-summary")).to_contain_text(bin_url)

    # The bin's inspector, open in a second tab before anything is sent.
    inspector = page.context.new_page()
    inspector_errors: list[str] = []
    inspector.on("pageerror", lambda exc: inspector_errors.append(str(exc)))
    inspector.goto(f"{base}/bins/{bin_id}")
    expect(inspector.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(inspector.locator(".request-row")).to_have_count(0)

    page.bring_to_front()
    page.get_by_role("button", name="Send Test Event").click()
    dialog = page.locator("#test-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#test-outcome")).to_contain_text("Delivered: the receiver answered 200")
    expect(dialog.locator("#test-outcome")).to_contain_text(re.compile(r"in \d+ ms"))
    expect(dialog.locator("#test-headers")).to_contain_text("X-Hooklab-Request-Id")
    expect(dialog.locator("#test-body")).to_contain_text('"ok": true')
    screenshot(page, "webhook-test.png")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # The payload arrived in the bin, live, with the plugin's keys; HTML in it stays text.
    row = inspector.locator(".request-row")
    expect(row).to_have_count(1)
    inspector.bring_to_front()  # a background tab's timers and clicks are throttled
    row.click()
    expect(inspector.locator("#detail-method")).to_have_text("POST")
    inspector.get_by_role("tab", name=re.compile("Headers")).click()
    expect(inspector.locator("#panel-headers")).to_contain_text("Webhook-Signature")
    expect(inspector.locator("#panel-headers")).to_contain_text("payment_received")
    inspector.get_by_role("tab", name=re.compile("Body")).click()
    body = inspector.locator("#panel-body")
    expect(body).to_contain_text("payment_reference_code")
    expect(body).to_contain_text("John McMocked")
    expect(body).to_contain_text("<img alt=")
    expect(body.locator("img")).to_have_count(0)

    # The delivery log shows it as a test, with its attempt.
    page.bring_to_front()
    delivery = page.locator("#delivery-log .delivery").first
    expect(delivery).to_contain_text("succeeded")
    expect(delivery.locator(".tag")).to_have_text("test")
    delivery.locator("summary").first.click()
    attempt = delivery.locator(".attempt").first
    expect(attempt).to_contain_text("Attempt 1")
    expect(attempt.locator(".trigger")).to_have_text("test")
    attempt.locator("summary").click()
    expect(attempt).to_contain_text("v1,<redacted>")

    # Redeliver: one more request into the bin, with the same webhook-id.
    delivery.get_by_role("button", name="Redeliver").click()
    expect(page.locator("#delivery-log .delivery").first.locator(".attempt")).to_have_count(2)
    expect(page.locator("#delivery-log .delivery").first.locator(".trigger").nth(1)).to_have_text(
        "manual"
    )
    expect(inspector.locator(".request-row")).to_have_count(2)
    captured = requests.get(f"{base}/api/bins/{bin_id}/requests", timeout=5).json()
    summaries = captured["requests"] if isinstance(captured, dict) else captured
    ids = {
        dict(
            (name.lower(), value)
            for name, value in requests.get(
                f"{base}/api/bins/{bin_id}/requests/{s['id']}", timeout=5
            ).json()["headers"]
        )["webhook-id"]
        for s in summaries
    }
    assert len(ids) == 1

    page.goto(f"{base}/webhooks")
    listed = page.locator(".webhooks-table tbody tr").first
    expect(listed).to_contain_text("Payments into my bin")
    expect(listed).to_contain_text("Active")
    expect(listed.locator("td.num")).to_have_text("1")
    expect(listed).to_contain_text("200")
    screenshot(page, "webhooks.png")
    assert page.js_errors == [] and inspector_errors == []


def test_the_form_shows_errors_by_the_field_and_keeps_the_input(page, live_server):
    page.goto(f"{live_server.url}/webhooks")
    page.get_by_label("Name", exact=True).fill("A")
    page.get_by_label("URL", exact=True).fill("example.com/hooks")
    page.get_by_label("Event", exact=True).select_option(label="Invoice Sent")
    page.get_by_role("button", name="Add New Webhook").click()
    expect(page.locator("#name-error")).to_have_text("Name must be at least 2 characters.")
    expect(page.locator("#url-error")).to_have_text("URL must start with http:// or https://.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("A")
    expect(page.get_by_label("URL", exact=True)).to_have_value("example.com/hooks")
    expect(page.get_by_label("Event", exact=True)).to_have_value("invoice_sent")
    expect(page.get_by_label("URL", exact=True)).to_have_attribute("aria-invalid", "true")
    assert requests.get(f"{live_server.url}/api/webhooks", timeout=5).json() == []

    # "Create a bin for me" fills in a good URL: the refused URL's message goes with it.
    page.get_by_role("button", name="Create a bin for me").click()
    url_field = page.get_by_label("URL", exact=True)
    expect(url_field).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/b/[a-z2-7]{26}$"))
    expect(page.locator("#url-error")).to_have_count(0)
    expect(url_field).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name-error")).to_be_visible()  # still true of the name
    assert page.js_errors == []


def test_a_connection_error_is_shown_in_words_and_the_secret_on_demand(page, live_server):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    webhook = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Nobody home", "url": f"http://127.0.0.1:{port}/", "event": "*"},
        timeout=5,
    ).json()
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    secret = page.locator("#secret-value")
    expect(secret).not_to_contain_text(webhook["secret"])
    page.get_by_role("button", name="Show").click()
    expect(secret).to_have_text(webhook["secret"])
    page.get_by_role("button", name="Hide").click()
    expect(secret).not_to_contain_text(webhook["secret"])

    page.get_by_role("button", name="Send Test Event").click()
    outcome = page.locator("#test-outcome")
    # The time before the reason, so "… at 127.0.0.1:port" is not followed by "in 1 ms".
    expect(outcome).to_have_text(
        re.compile(
            rf"Not delivered after \d+ ms: connection refused: nothing is listening at "
            rf"127\.0\.0\.1:{port}\.$"
        )
    )
    expect(page.locator("#test-details")).to_be_hidden()
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#delivery-log .delivery").first).to_contain_text("failed")
    expect(page.locator("#delivery-log .delivery").first).to_contain_text("connection refused")

    page.get_by_role("button", name="Regenerate secret").click()
    page.locator("#confirm-ok").click()
    # The masked secret also starts with "whsec_": wait for the new one to be shown (the
    # POST answered) before asking the API, or the GET may still see the old secret.
    expect(secret).to_have_attribute("data-hidden", "false")
    expect(secret).not_to_have_text(webhook["secret"])
    expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/=]+$"))
    fresh = requests.get(f"{live_server.url}/api/webhooks/{webhook['id']}", timeout=5).json()
    expect(secret).to_have_text(fresh["secret"])
    assert page.js_errors == []


def test_events_table_shows_payloads_as_text_with_a_copy_button(page, live_server):
    page.goto(f"{live_server.url}/webhooks")
    rows = page.locator(".events-table tbody tr")
    expect(rows).to_have_count(14)
    first = rows.first
    expect(first).to_contain_text("Payment Received")
    expect(first).to_contain_text("payment_received")
    payload = json.loads(first.locator("pre.payload").inner_text())
    assert payload["customer_avatar"].startswith("<img ")
    expect(page.locator(".events-table img")).to_have_count(0)
    first.locator(".event-payload").get_by_role("button", name="Copy").click()
    expect(page.locator("#toast")).to_contain_text("Copied")
    assert page.js_errors == []


def test_the_page_follows_new_deliveries_and_a_410_that_disables_it(page, live_server):
    base = live_server.url
    target = live_server.create_bin(response={"status": 410})
    webhook = requests.post(
        f"{base}/api/webhooks",
        json={"name": "Goes away", "url": target["url"], "event": "payment_received"},
        timeout=5,
    ).json()
    page.clock.install()  # the log's poll timer, fast-forwarded below instead of waited for
    page.goto(f"{base}/webhooks/{webhook['id']}")
    expect(page.locator("#detail-deliveries")).to_have_text("0")

    # Send Test Event: the 410 disables the webhook (design.md: "a 410 disables the webhook"),
    # and the dialog says so; the details count the delivery without a reload.
    page.get_by_role("button", name="Send Test Event").click()
    # Said once: the reason names the 410, the sentence after it what it did.
    expect(page.locator("#test-outcome")).to_have_text(
        re.compile(
            r"^410 Not delivered after \d+ ms: HTTP 410 Gone: the receiver says this URL is "
            r"gone\. The webhook is now disabled\.$"
        )
    )
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    expect(page.locator("#detail-deliveries")).to_have_text("1")
    page.clock.fast_forward(11_000)
    expect(page.locator("#webhook-state")).to_have_text("Disabled")
    page.locator("#state-form").get_by_role("button", name="Enable").click()
    expect(page.locator("#webhook-state")).to_have_text("Active")

    # An event fired elsewhere gets 410 Gone: the webhook is disabled, and the page's next
    # look at the log says so where it said "Active".
    requests.post(f"{base}/api/events/payment_received", json={"payment_id": 1}, timeout=5)
    deadline = time.monotonic() + 10
    while requests.get(f"{base}/api/webhooks/{webhook['id']}", timeout=5).json()["active"]:
        assert time.monotonic() < deadline, "the 410 did not disable the webhook"
        time.sleep(0.05)
    page.clock.fast_forward(11_000)
    expect(page.locator("#webhook-state")).to_have_text("Disabled")
    expect(page.locator("#state-change")).to_be_visible()
    expect(page.locator("#state-change")).to_contain_text("410 Gone")
    expect(page.locator("#detail-deliveries")).to_have_text("2")
    state = page.locator("#state-form")
    expect(state.get_by_role("button")).to_have_text("Enable")

    # The button now does what it says.
    state.get_by_role("button", name="Enable").click()
    expect(page.locator("#webhook-state")).to_have_text("Active")
    assert requests.get(f"{base}/api/webhooks/{webhook['id']}", timeout=5).json()["active"]
    assert page.js_errors == []


@pytest.mark.parametrize("width, height", [(1280, 720), (1024, 768)])
def test_the_settings_and_secret_cards_line_up(page, live_server, width, height):
    webhook = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Aligned", "url": "http://127.0.0.1:9/", "event": "*"},
        timeout=5,
    ).json()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    settings_box = page.locator("section[aria-labelledby=settings-title]").bounding_box()
    secret_box = page.locator("section[aria-labelledby=secret-title]").bounding_box()
    assert settings_box["y"] == secret_box["y"]


def test_a_missing_webhook_leads_back_to_the_webhooks(page, live_server):
    response = page.goto(f"{live_server.url}/webhooks/999")
    assert response.status == 404
    expect(page.locator(".error-page")).to_contain_text("There is no webhook 999")
    page.get_by_role("link", name="Back to the webhooks").click()
    expect(page).to_have_url(f"{live_server.url}/webhooks")


@pytest.mark.parametrize("path", ["/webhooks", "/webhooks/new", "/webhooks/{id}"])
def test_more_options_fields_have_room_between_them(page, live_server, path):
    webhook = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Spaced", "url": "http://127.0.0.1:9/", "event": "*"},
        timeout=5,
    ).json()
    page.goto(live_server.url + path.format(id=webhook["id"]))
    page.get_by_text("More options").click()
    summary = page.locator(".more-options > summary").bounding_box()
    select = page.get_by_label("Payload format").bounding_box()
    timeout_label = page.locator("label[for=webhook-timeout]").bounding_box()
    assert select["y"] - (summary["y"] + summary["height"]) >= 12
    assert timeout_label["y"] - (select["y"] + select["height"]) >= 12


def test_a_webhook_deleted_elsewhere_says_so(page, live_server):
    webhook = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Short-lived", "url": "http://127.0.0.1:9/", "event": "*"},
        timeout=5,
    ).json()
    page.clock.install()
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    expect(page.locator("#log-empty")).to_be_visible()
    requests.delete(f"{live_server.url}/api/webhooks/{webhook['id']}", timeout=5)
    page.clock.fast_forward(11_000)
    expect(page.locator("#state-change")).to_have_text(
        "This webhook has been deleted (in another tab or from the CLI)."
    )
    expect(page.get_by_role("button", name="Send Test Event")).to_be_disabled()
    expect(page.locator("#log-status")).to_have_text("")
    assert page.js_errors == []


def test_a_long_name_wraps_instead_of_widening_the_tables(page, live_server):
    long_name = "x" * 200
    response = requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": long_name, "url": "https://example.com/hook", "event": "*"},
        timeout=5,
    )
    assert response.status_code == 201
    live_server.create_bin(name="é" * 200)
    fits = """selector => {
        const table = document.querySelector(selector);
        return table.scrollWidth <= table.closest('.table-wrap').clientWidth;
    }"""
    page.goto(f"{live_server.url}/webhooks")
    expect(page.get_by_role("link", name=long_name)).to_be_visible()
    assert page.evaluate(fits, ".webhooks-table")
    page.goto(f"{live_server.url}/")
    expect(page.locator(".bins-table .bin-name")).to_have_count(1)
    assert page.evaluate(fits, ".bins-table")
    assert page.js_errors == []


def test_a_form_already_sent_is_not_sent_again(page, live_server):
    # Two submit events in a row (a double click, Enter twice) before the next page comes:
    # the second is cancelled and the button is off. Shown again from the history, it works.
    page.goto(f"{live_server.url}/webhooks")
    twice = """() => {
        const form = document.querySelector('.webhook-form');
        const submit = () => new Event('submit', {cancelable: true, bubbles: true});
        const send = () => form.dispatchEvent(submit());
        const first = send(), second = send();
        return [first, second, form.querySelector('button[type=submit]').disabled];
    }"""
    assert page.evaluate(twice) == [True, False, True]
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    expect(page.get_by_role("button", name="Add New Webhook")).to_be_enabled()
    assert page.evaluate(twice) == [True, False, True]
    assert page.js_errors == []


def _webhook_into_a_bin(live_server, event: str = "payment_received") -> dict:
    target = live_server.create_bin()
    return requests.post(
        f"{live_server.url}/api/webhooks",
        json={"name": "Into a bin", "url": target["url"], "event": event},
        timeout=5,
    ).json()


def _fire_and_wait(live_server, webhook: dict, count: int) -> None:
    """Fire the webhook's event and wait until `count` deliveries have succeeded."""
    base = live_server.url
    requests.post(f"{base}/api/events/{webhook['event']}", json={"payment_id": 1}, timeout=5)
    deadline = time.monotonic() + 10
    while True:
        log = requests.get(f"{base}/api/webhooks/{webhook['id']}/deliveries", timeout=5).json()
        if len(log) == count and all(d["status"] == "succeeded" for d in log):
            return
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def _poll_the_log(page) -> None:
    """Make the page read its log now, and wait until it has dealt with the answer.

    A read that works empties #log-status in the same step that updates the log, so a
    placeholder put there shows when the update is done.
    """
    page.evaluate(
        """() => {
          document.getElementById("log-status").textContent = "polling";
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    expect(page.locator("#log-status")).to_have_text("")


def test_the_delivery_log_keeps_focus_and_selection_across_polls(page, live_server):
    webhook = _webhook_into_a_bin(live_server)
    _fire_and_wait(live_server, webhook, 1)
    _fire_and_wait(live_server, webhook, 2)
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    deliveries = page.locator("#delivery-log .delivery")
    expect(deliveries).to_have_count(2)
    older = deliveries.nth(1)
    older_id = older.get_attribute("data-delivery-id")
    older.locator("> summary").click()
    redeliver = older.get_by_role("button", name="Redeliver")
    redeliver.focus()
    # Select some of the payload's text, and mark the focused button to know it again.
    page.evaluate(
        """(id) => {
          const box = document.querySelector(`[data-delivery-id="${id}"] pre.payload`);
          const range = document.createRange();
          range.selectNodeContents(box);
          getSelection().removeAllRanges();
          getSelection().addRange(range);
          document.activeElement.dataset.mark = "focused";
        }""",
        older_id,
    )
    redeliver.focus()

    # Nothing changed: the page leaves the log alone.
    _poll_the_log(page)
    assert page.evaluate("document.activeElement.dataset.mark") == "focused"
    assert "payment_id" in page.evaluate("getSelection().toString()")

    # A new delivery arrives: the others stay as they are, focus and selection included.
    _fire_and_wait(live_server, webhook, 3)
    _poll_the_log(page)
    expect(deliveries).to_have_count(3)
    assert page.evaluate("document.activeElement.dataset.mark") == "focused"
    assert "payment_id" in page.evaluate("getSelection().toString()")

    # Redeliver from the keyboard: that delivery changes, and focus stays on its button.
    page.keyboard.press("Enter")
    changed = page.locator(f'#delivery-log .delivery[data-delivery-id="{older_id}"]')
    expect(changed.locator("> summary")).to_contain_text("2 attempts")
    expect(changed).to_have_attribute("open", "")
    expect(changed.get_by_role("button", name="Redeliver")).to_be_focused()
    assert page.js_errors == []


def test_closing_the_test_response_gives_focus_back_to_the_button(page, live_server):
    webhook = _webhook_into_a_bin(live_server)
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    button = page.get_by_role("button", name="Send Test Event")
    dialog = page.locator("#test-dialog")
    for close in ("Escape", "Close"):
        button.focus()
        page.keyboard.press("Enter")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#test-outcome")).to_contain_text("Delivered")
        if close == "Escape":
            page.keyboard.press("Escape")
        else:
            dialog.get_by_role("button", name="Close").click()
        expect(dialog).to_be_hidden()
        expect(button).to_be_focused()
    assert page.js_errors == []


def test_event_payloads_and_schemas_keep_their_lines_whole(page, live_server):
    page.goto(f"{live_server.url}/webhooks")
    boxes = page.locator(".events-table pre.payload, .events-table pre.schema")
    expect(boxes.first).to_be_visible()
    # Each box shows one screen line per line of JSON: no key is split, nothing wraps.
    wrapped = page.evaluate(
        """() => [...document.querySelectorAll(".events-table pre")]
          .map((box) => {
            const range = document.createRange();
            range.selectNodeContents(box);
            const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            const lines = box.textContent.replace(/\\n$/, "").split("\\n").length;
            return { id: box.id, lines, shown: tops.size };
          })
          .filter((box) => box.shown !== box.lines)"""
    )
    assert wrapped == []
    # A box wider than its text still scrolls inside itself, not the page.
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    assert page.js_errors == []


def test_show_and_copy_give_the_secret_as_it_is_now(page, live_server):
    # The page kept the secret it first loaded: rotated in another tab or from the CLI, Copy
    # still gave the old one, and a receiver set up with it rejected every delivery.
    target = live_server.create_bin()
    webhook = live_server.add_webhook(name="Rotated", url=target["url"], event="*")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/webhooks/{webhook['id']}")
    secret = page.locator("#secret-value")
    page.get_by_role("button", name="Show").click()
    expect(secret).to_have_text(webhook["secret"])
    page.get_by_role("button", name="Hide").click()

    api = f"{live_server.url}/api/webhooks/{webhook['id']}"
    first = requests.post(f"{api}/regenerate-secret", timeout=5).json()["secret"]
    assert first != webhook["secret"]
    page.locator("#secret-copy").click()
    expect(page.locator("#toast")).to_have_text("Secret copied")
    assert page.evaluate("navigator.clipboard.readText()") == first
    page.get_by_role("button", name="Show").click()
    expect(secret).to_have_text(first)

    # Shown, it follows a change made elsewhere with the log's next refresh.
    second = requests.post(f"{api}/regenerate-secret", timeout=5).json()["secret"]
    expect(secret).to_have_text(second, timeout=20_000)

    # Shown and copied: the page shows what was copied.
    third = requests.post(f"{api}/regenerate-secret", timeout=5).json()["secret"]
    page.locator("#secret-copy").click()
    expect(secret).to_have_text(third)
    assert page.evaluate("navigator.clipboard.readText()") == third
    assert page.js_errors == []


def test_a_refused_form_puts_the_focus_on_the_first_field_in_error(page, live_server):
    page.goto(f"{live_server.url}/webhooks")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Add New Webhook").click()
    name = page.locator('form input[name="name"]')
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    expect(page.get_by_label("URL")).to_have_value("http://127.0.0.1:9/hook")
    assert page.js_errors == []
