"""Page addresses as people type them: a slash too many, an id that is not one."""

from __future__ import annotations


def test_a_page_with_a_trailing_slash_is_redirected_to_the_page(client):
    bin_id = client.post("/api/bins", json={"name": "slash"}).get_json()["id"]
    webhook = client.post(
        "/api/webhooks", json={"name": "slash", "url": "http://127.0.0.1:9/", "event": "*"}
    ).get_json()
    for page in (f"/bins/{bin_id}", f"/webhooks/{webhook['id']}", "/webhooks"):
        answer = client.get(page + "/?x=1")
        assert answer.status_code == 308, page
        assert answer.headers["Location"] == page + "?x=1"
        assert client.get(page).status_code == 200
    # Only pages: the API answers exactly what was asked, and nothing leads off this server.
    assert client.get(f"/api/bins/{bin_id}/").status_code == 404
    # "//webhooks" as a Location would be another host's address ("webhooks"): Werkzeug
    # merges the slashes first.
    doubled = client.get("/", environ_overrides={"PATH_INFO": "//webhooks/"})
    assert doubled.headers["Location"] == "/webhooks"
    assert client.get("/nothing-here/").status_code == 404
    assert client.post(f"/bins/{bin_id}/").status_code in (404, 405)


def test_an_id_that_is_not_one_is_quoted_in_the_404_page(client):
    answer = client.get("/webhooks/%00")
    assert answer.status_code == 404
    text = answer.get_data(as_text=True)
    assert "\x00" not in text
    assert "There is no webhook &#39;\\x00&#39;; it may have been deleted." in text
    assert "There is no webhook 999;" in client.get("/webhooks/999").get_data(as_text=True)
    answer = client.get("/bins/%0Abad")
    assert answer.status_code == 404
    assert "There is no bin with id &#39;\\nbad&#39;." in answer.get_data(as_text=True)
