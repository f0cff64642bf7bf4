"""The rules editor and forwarding in a real browser: a preset in one click, the answered-by
badge arriving live, a bad rule shown next to its field, the Response tab of a forward."""

from __future__ import annotations

import json

import pytest
import requests
from playwright.sync_api import expect

from tests.app_receiver import AppReceiver
from tests.waiting import wait_for

pytestmark = pytest.mark.browser


def open_settings(page, inspect_url: str) -> None:
    page.goto(inspect_url)
    page.locator("#settings summary").click()
    expect(page.locator("#rules-empty")).to_be_visible()


def test_a_preset_in_one_click_and_the_badge_updates_live(page, live_server, screenshot):
    created = live_server.create_bin()
    open_settings(page, created["inspect_url"])
    page.get_by_role("button", name="Fail the first 3 (503)").click()
    expect(page.locator(".rule-row")).to_have_count(1)
    expect(page.locator(".rule-row")).to_contain_text("Fail the first 3")
    expect(page.locator(".rule-row .rule-count")).to_have_text("answered 0")
    # The row is shown at once; the server has the rule once the save answered.
    expect(page.locator("#toast")).to_have_text("Rules saved")
    shown = requests.get(f"{live_server.url}/api/bins/{created['id']}", timeout=5).json()
    assert shown["rules"] == [{"name": "Fail the first 3", "times": 3, "status": 503}]

    statuses = [
        requests.post(created["url"] + f"/try/{i}", timeout=5).status_code for i in range(4)
    ]
    assert statuses == [503, 503, 503, 200]
    rows = page.locator(".request-row")
    expect(rows).to_have_count(4)  # arrived over the websocket, no reload
    badges = page.locator(".request-row [data-answered-by]")
    expect(badges).to_have_text(
        [
            "200 · default",
            "503 · Fail the first 3",
            "503 · Fail the first 3",
            "503 · Fail the first 3",
        ]
    )
    expect(page.locator(".rule-row .rule-count")).to_have_text("answered 3 (spent)")
    page.locator(".request-row", has_text="/try/0").click()
    expect(page.locator("#panel-overview")).to_contain_text("503 · Fail the first 3")
    page.locator("#rules-editor").evaluate("node => node.scrollIntoView()")
    page.locator("#toast").evaluate("node => { node.hidden = true; }")
    screenshot(page, "rules-editor.png")

    page.locator("#rules-reset").click()
    expect(page.locator(".rule-row .rule-count")).to_have_text("answered 0")
    assert page.js_errors == []


def test_presets_clicked_before_the_first_save_returns_are_all_kept(page, live_server):
    # Each click used to save the rules shown plus its preset, so the second save (sent
    # before the first one's answer) dropped the first preset: two clicks, one rule.
    created = live_server.create_bin()
    open_settings(page, created["inspect_url"])
    page.evaluate(
        """() => {
            const presets = document.querySelectorAll("[data-preset]");
            presets[0].click();  // both in one task: no answer can come in between
            presets[1].click();
            presets[2].click();
        }"""
    )
    expect(page.locator(".rule-row")).to_have_count(3)
    bin_url = f"{live_server.url}/api/bins/{created['id']}"
    wait_for(
        lambda: len(requests.get(bin_url, timeout=5).json()["rules"]) == 3,
        what="the three presets saved",
    )
    shown = requests.get(bin_url, timeout=5).json()
    page.evaluate(
        """() => {
            // Both buttons as the person saw them, before the first click changed the list.
            const first = document.querySelector('[aria-label="Remove rule 1"]');
            const second = document.querySelector('[aria-label="Remove rule 2"]');
            first.click();
            second.click();
        }"""
    )
    expect(page.locator(".rule-row")).to_have_count(1)
    wait_for(
        lambda: len(requests.get(bin_url, timeout=5).json()["rules"]) == 1,
        what="both removals saved",
    )
    kept = requests.get(bin_url, timeout=5).json()["rules"]
    assert [r["name"] for r in kept] == [shown["rules"][2]["name"]]
    expect(page.locator(".rule-row .rule-name")).to_have_text(shown["rules"][2]["name"])
    assert page.js_errors == []


def test_every_preset_and_a_bad_rule_named(page, live_server):
    created = live_server.create_bin()
    open_settings(page, created["inspect_url"])
    for name in (
        "Flaky (30 % 500)",
        "Slow (1–5 s)",
        "Rate limited (429, Retry-After: 5)",
        "Gone (410)",
        "Hang up",
    ):
        page.get_by_role("button", name=name).click()
    expect(page.locator(".rule-row")).to_have_count(5)  # shown at once, saved one by one
    bin_url = f"{live_server.url}/api/bins/{created['id']}"
    wait_for(
        lambda: len(requests.get(bin_url, timeout=5).json()["rules"]) == 5,
        what="the five presets saved",
    )
    shown = requests.get(bin_url, timeout=5).json()
    assert [r["name"] for r in shown["rules"]] == [
        "Flaky", "Slow", "Rate limited", "Gone", "Hang up"
    ]  # fmt: skip
    assert shown["rules"][2]["headers"] == [["Retry-After", "5"]]

    page.get_by_role("button", name="Edit as JSON").click()
    bad = shown["rules"] + [{"percent": 250, "status": 500}]
    page.locator("#rules-text").fill(json.dumps(bad))
    page.get_by_role("button", name="Save rules").click()
    error = page.locator("#rules-form .field-error")
    expect(error).to_contain_text("rules[5].percent")
    again = requests.get(f"{live_server.url}/api/bins/{created['id']}", timeout=5).json()
    assert len(again["rules"]) == 5  # nothing half-saved

    page.get_by_role("button", name="Remove rule 1").click()
    expect(page.locator(".rule-row")).to_have_count(4)
    assert page.js_errors == []


def test_a_saved_rule_clears_an_earlier_error_and_keeps_a_forward_being_typed(page, live_server):
    created = live_server.create_bin()
    open_settings(page, created["inspect_url"])
    page.get_by_role("button", name="Edit as JSON").click()
    bad = [{"match": {"method": "POST"}, "bogus": 1, "status": 200}]
    page.locator("#rules-text").fill(json.dumps(bad))
    page.get_by_role("button", name="Save rules").click()
    error = page.locator("#rules-form .field-error:not([hidden])")
    expect(error).to_contain_text("rules[0].bogus")
    expect(page.locator("#rules-text")).to_have_attribute("aria-invalid", "true")
    page.locator("#forward-url").fill("http://127.0.0.1:9/typed-not-saved")

    page.get_by_role("button", name="Fail the first 3 (503)").click()
    expect(page.locator(".rule-row")).to_have_count(1)
    expect(page.locator("#rules-form .field-error:not([hidden])")).to_have_count(0)
    expect(page.locator("#rules-text")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#rules-error")).to_be_hidden()
    # Saving the rules refilled the rules, not the forward form being typed in.
    expect(page.locator("#forward-url")).to_have_value("http://127.0.0.1:9/typed-not-saved")
    shown = requests.get(f"{live_server.url}/api/bins/{created['id']}", timeout=5).json()
    assert shown["forward"] is None and len(shown["rules"]) == 1
    assert page.js_errors == []


def test_a_number_too_large_in_the_json_editor_saves_nothing(page, live_server):
    # JSON.parse reads 1e999 as Infinity, and sent on it became null: "times" unset, a rule
    # answering 503 for ever, saved with a "Rules saved" and no word of it.
    created = live_server.create_bin()
    open_settings(page, created["inspect_url"])
    page.get_by_role("button", name="Edit as JSON").click()
    page.locator("#rules-text").fill('[{"times": 1e999, "status": 503}]')
    page.get_by_role("button", name="Save rules").click()
    error = page.locator("#rules-form .field-error:not([hidden])")
    expect(error).to_have_text(
        "A number is too large (JSON reads it as infinity): nothing was saved."
    )
    expect(page.locator("#rules-text")).to_have_attribute("aria-invalid", "true")
    shown = requests.get(f"{live_server.url}/api/bins/{created['id']}", timeout=5).json()
    assert shown["rules"] == []
    assert requests.post(created["url"], data=b"x", timeout=5).status_code == 200
    assert page.js_errors == []


def test_forwarding_and_the_response_tab(page, live_server, screenshot):
    app = AppReceiver(status=201, headers=[("X-App", "<b>yes</b>")], body=b'{"saved": "<img>"}')
    try:
        created = live_server.create_bin()
        open_settings(page, created["inspect_url"])
        page.locator("#forward-url").fill("ftp://nope")
        page.get_by_role("button", name="Save", exact=True).click()
        # Next to the field, the error names it by its label, not by its API path.
        expect(page.locator('#forward-form [data-error-for="forward.url"]')).to_have_text(
            "Forward URL must be http:// or https:// with a host."
        )
        page.locator("#forward-url").fill(app.url + "/hooks")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#forward-stop")).to_be_visible()

        assert (
            requests.post(created["url"] + "/stripe", json={"a": 1}, timeout=5).status_code == 201
        )
        page.locator(".request-row", has_text="/stripe").click()
        tab = page.get_by_role("tab", name="Response")
        expect(tab).to_be_visible()
        tab.click()
        panel = page.locator("#panel-response")
        expect(panel).to_contain_text(app.url + "/hooks/stripe")
        expect(panel).to_contain_text("201")
        expect(panel).to_contain_text("<b>yes</b>")  # as text, never markup
        expect(page.locator("#forward-body")).to_have_text('{"saved": "<img>"}')
        assert page.locator("#panel-response b, #panel-response img").count() == 0
        # The row's badge shows the app's answer once it is known.
        expect(page.locator(".request-row [data-answered-by]")).to_have_text("201 · forward")
        page.locator("#settings summary").first.click()  # fold the settings away
        page.locator("#toast").evaluate("node => { node.hidden = true; }")
        screenshot(page, "forward-response.png")

        page.locator("#settings summary").first.click()
        page.locator("#forward-stop").click()
        expect(page.locator("#forward-stop")).to_be_hidden()
        assert requests.post(created["url"] + "/plain", timeout=5).status_code == 200
        page.locator(".request-row", has_text="/plain").click()
        expect(page.get_by_role("tab", name="Response")).to_be_hidden()
        assert page.js_errors == []
    finally:
        app.stop()
