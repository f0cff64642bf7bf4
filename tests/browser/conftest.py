"""Real-browser fixtures: Playwright for Python driving the system Chromium at /usr/bin/chromium.

Playwright's own browser download does not work here, so the system browser is used. Without
Chromium the browser tests skip with a message, except under CI, where a missing browser fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("HOOKLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _chromium_path() -> str | None:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = _chromium_path()
    if path is None:
        message = f"no Chromium at {CHROMIUM} (install Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium under CI: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # tests may assert no script error happened
    yield page
    context.close()


@pytest.fixture
def screenshot(tmp_path):
    """Take a screenshot, e.g. screenshot(page, "x.png").

    It goes into docs/ (for the README) only with HOOKLAB_SCREENSHOTS=1 (`make screenshots`),
    so a test run leaves the tree clean; otherwise into the test's temporary folder.
    """
    folder = DOCS if os.environ.get("HOOKLAB_SCREENSHOTS") == "1" else tmp_path

    def take(page, name: str) -> Path:
        folder.mkdir(exist_ok=True)
        target = folder / name
        page.screenshot(path=str(target), full_page=False)
        return target

    return take


def watch_console(page) -> list[str]:
    """Console errors of a page: a CSP violation (an inline script or style) shows up there."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def assert_nothing_ran(page, console: list[str]) -> None:
    """No injected script ran, no script error, no CSP violation, no hostile element made."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.js_errors == []
    assert not [m for m in console if "Content Security Policy" in m], console
    assert page.locator("img[onerror], svg[onload], main script").count() == 0


def open_request(page, inspect_url: str, path: str, tab: str | None = None) -> None:
    """Open the inspector and select the request whose path is `path` (and `tab`, if given)."""
    from playwright.sync_api import expect

    page.goto(inspect_url)
    page.locator(".request-row", has_text=path).click()
    expect(page.locator("#detail-path")).to_have_text(path)
    if tab:
        page.get_by_role("tab", name=re.compile(tab)).click()


def run_copied_curl(page) -> None:
    """Run the selected request's "Copy as curl" command with the real curl, in bash."""
    command = page.locator("#copy-curl").get_attribute("data-curl")
    result = subprocess.run(
        ["bash", "-c", command + " --silent --show-error --max-time 5"],
        capture_output=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
