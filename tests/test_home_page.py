"""The home page's list of bins: a page at a time, newest first, none out of reach."""

from __future__ import annotations

import re

import pytest

from hooklab.bin_server.pages import HOME_PAGE_SIZE


def make_bins(client, count: int) -> list[str]:
    """Create `count` bins named "bin 0", "bin 1", ... (oldest first); returns their ids."""
    ids = []
    for number in range(count):
        response = client.post("/api/bins", json={"name": f"bin {number}"})
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    return ids


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-bin-id="([a-z2-7]{26})">', html)


def test_one_page_when_the_bins_fit(client):
    ids = make_bins(client, 3)
    html = client.get("/").get_data(as_text=True)
    assert listed(html) == ids[::-1]
    assert '<span class="muted" id="bins-count">3 bins</span>' in html
    assert 'class="pager"' not in html


def test_every_bin_is_reachable_a_page_at_a_time(client):
    ids = make_bins(client, HOME_PAGE_SIZE + 5)
    first = client.get("/").get_data(as_text=True)
    assert listed(first) == ids[::-1][:HOME_PAGE_SIZE]
    assert f"1–{HOME_PAGE_SIZE} of {HOME_PAGE_SIZE + 5} bins, newest first" in first
    assert 'href="/?page=2" rel="next">Older bins →' in first
    assert "Page 1 of 2" in first and 'rel="prev"' not in first
    assert "Try it" in first  # the curl line of the newest bin, on the first page only

    second = client.get("/?page=2").get_data(as_text=True)
    assert listed(second) == ids[::-1][HOME_PAGE_SIZE:]  # the oldest five, "bin 0" last
    assert f"{HOME_PAGE_SIZE + 1}–{HOME_PAGE_SIZE + 5} of {HOME_PAGE_SIZE + 5} bins" in second
    assert 'href="/?page=1" rel="prev">← Newer bins' in second and 'rel="next"' not in second
    assert "Try it" not in second

    beyond = client.get("/?page=9")
    assert beyond.status_code == 200
    assert "No bins on page 9: there are 2 pages." in beyond.get_data(as_text=True)


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "٢", str(2**64), "9" * 40])
def test_a_page_that_is_not_a_whole_number_from_1_is_a_400_page(client, page):
    response = client.get("/", query_string={"page": page})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "page must be a whole number from 1" in response.get_data(as_text=True)


def test_the_pages_show_this_servers_limits(tmp_path):
    # design.md: the limits are "shown in the UI and GET /api/settings", as this server has them.
    from hooklab.app.factory import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        max_requests_per_bin=250,
        max_body_bytes=1024 * 1024,
        max_delay_ms=5000,
        bin_ttl_s=7200,
        retry_schedule="5,30,120",
        retry_jitter=0.2,
        disable_after_failures=4,
    )
    client = create_app(settings).test_client()
    bin_id = client.post("/api/bins", json={}).get_json()["id"]

    def text(path: str) -> str:
        html = client.get(path).get_data(as_text=True)
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))

    for page in (text("/"), text(f"/bins/{bin_id}")):
        assert "keeps the newest 250 requests of each bin, and bodies up to 1 MiB" in page
        assert "delay its answers by up to 5 s" in page
        assert "Bins with no request for 2 h are deleted." in page
    assert 'max="5000"' in client.get(f"/bins/{bin_id}").get_data(as_text=True)
    webhooks = text("/webhooks")
    assert "is tried again after 5 s, 30 s, 2 min (±20 %)" in webhooks
    assert "A 410 disables the webhook at once, as do 4 failed deliveries in a row." in webhooks
