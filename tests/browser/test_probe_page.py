"""The webhook page in a real browser: Rotate with its confirmation, and Probe the receiver."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from hooklab.sender.probe import NAMES
from hooklab.shared.signing import generate_secret
from tests import receivers

pytestmark = pytest.mark.browser


def test_probe_the_receiver_then_rotate_the_secret(page, live_server, screenshot):
    base = live_server.url
    old = generate_secret()
    with receivers.serve(receivers.correct(old)) as receiver:
        created = requests.post(
            f"{base}/api/webhooks",
            json={
                "name": "My receiver",
                "url": receiver.url,
                "event": "payment_received",
                "secret": old,
            },
            timeout=5,
        )
        assert created.status_code == 201, created.text
        webhook = created.json()
        page.goto(f"{base}/webhooks/{webhook['id']}")
        expect(page.locator("#signature-scheme")).to_have_text("v1")
        expect(page.locator("#previous-block")).to_be_hidden()

        # Probe: the report card, one row per check, all passed.
        page.get_by_role("button", name="Probe the receiver").click()
        summary = page.locator("#probe-summary")
        expect(summary).to_contain_text("All 11 checks passed")
        rows = page.locator("#probe-checks tr")
        expect(rows).to_have_count(len(NAMES))
        assert rows.evaluate_all("rows => rows.map(r => r.dataset.check)") == NAMES
        expect(page.locator('#probe-checks tr[data-ok="true"]')).to_have_count(len(NAMES))
        expect(page.locator('tr[data-check="stale_timestamp"]')).to_contain_text("400")
        expect(page.locator("#probe-note")).to_contain_text("cannot be seen from outside")

        # Rotate, cancelled: nothing changes.
        page.get_by_role("button", name="Rotate").click()
        dialog = page.locator("#confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("24 h")
        dialog.get_by_role("button", name="Cancel").click()
        expect(page.locator("#previous-block")).to_be_hidden()
        assert (
            requests.get(f"{base}/api/webhooks/{webhook['id']}", timeout=5).json()["secret"] == old
        )

        # Rotate, confirmed: the new secret shows, the old one with when it stops.
        page.get_by_role("button", name="Rotate").click()
        dialog.get_by_role("button", name="Rotate").click()
        expect(page.locator("#previous-block")).to_be_visible()
        expect(page.locator("#previous-secret-value")).to_have_text(old)
        shown = requests.get(f"{base}/api/webhooks/{webhook['id']}", timeout=5).json()
        assert shown["previous_secret"] == old and shown["secret"] != old
        expect(page.locator("#secret-value")).to_have_text(shown["secret"])
        expect(page.locator("#previous-expires")).to_have_attribute(
            "datetime", shown["previous_secret_expires_at"]
        )
        expect(page.locator("#previous-expires")).not_to_have_text("")

        # This receiver still knows only the old secret: the probe, signed with the new one,
        # says what is wrong, next to what a correct receiver does.
        page.get_by_role("button", name="Probe the receiver").click()
        expect(summary).to_contain_text(re.compile(r"✗ 4 of 11 checks failed"))
        valid = page.locator('tr[data-check="valid_signature"]')
        expect(valid).to_have_attribute("data-ok", "false")
        expect(valid).to_contain_text("Got: answered HTTP 400, not a 2xx")
        expect(valid).to_contain_text("accepts a correctly signed event")
        page.locator("#probe-card").scroll_into_view_if_needed()
        shot = screenshot(page, "webhook-probe.png")
        page.locator("#probe-card").screenshot(path=str(shot.with_name("probe-card.png")))
        page.locator(".webhook-columns").screenshot(path=str(shot.with_name("secret-card.png")))
    assert page.js_errors == []
