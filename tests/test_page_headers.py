"""The headers every page and API answer of the app carries, in the default mode (no token)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/", "/webhooks", "/webhooks/new", "/api/bins", "/api/health"])
def test_pages_and_api_answers_are_never_cached_and_keep_their_guards(client, path):
    response = client.get(path)
    assert response.status_code == 200
    # The back button showed a stale list and a filled-in form (a second webhook was made).
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_static_files_may_be_cached(client):
    response = client.get("/static/app.css")
    try:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
    finally:
        response.close()  # the file stays open until the answer is closed
