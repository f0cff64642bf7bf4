"""Bins made and deleted in batches: `POST /api/bins/batch?count=` and `DELETE /api/bins?ids=`."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import requests

from hooklab.app.factory import create_app
from hooklab.client.http import Client, HooklabError
from hooklab.shared.context import get_notifier
from tests.conftest import make_settings
from tests.waiting import wait_until_reading

MISSING_BIN = "a" * 26  # the shape of a bin id, but no such bin
EVIL = "http://evil.example"


def make_bins(client, count: int, **fields) -> list[dict]:
    response = client.post(f"/api/bins/batch?count={count}", json=fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["bins"]


def listed_ids(client) -> set[str]:
    return {b["id"] for b in client.get("/api/bins").get_json()}


def capture(client, bin_id: str, data: bytes = b"x") -> int:
    response = client.post(f"/b/{bin_id}", data=data)
    assert response.status_code == 200, response.data
    return int(response.headers["X-Hooklab-Request-Id"])


def stored_request_count(db: str, bin_id: str) -> int:
    """Captured requests of a bin in the database file itself (not through the API)."""
    conn = sqlite3.connect(db)
    try:
        query = "SELECT count(*) FROM captured_requests WHERE bin_id = ?"
        return conn.execute(query, [bin_id]).fetchone()[0]
    finally:
        conn.close()


# -- POST /api/bins/batch -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3, 100])
def test_batch_makes_count_bins_alike(client, count):
    made = make_bins(client, count, name="pool", response={"status": 202, "body": "ok"})
    assert len(made) == count
    assert len({b["id"] for b in made}) == count
    assert listed_ids(client) == {b["id"] for b in made}
    for body in made:
        assert body["name"] == "pool"
        assert body["response"] == {"status": 202, "headers": [], "body": "ok", "delay_ms": 0}
        assert body["url"] == f"http://localhost/b/{body['id']}"
        assert (body["request_count"], body["last_request_at"]) == (0, None)
        # As the bin reads back on its own.
        assert client.get(f"/api/bins/{body['id']}").get_json() == body


def test_batch_bins_answer_as_configured(client):
    made = make_bins(client, 2, response={"status": 201, "body": "made"})
    for body in made:
        answer = client.post(f"/b/{body['id']}", data=b"x")
        assert (answer.status_code, answer.data) == (201, b"made")


def test_batch_bins_each_get_their_own_rules_seed_unless_given(client):
    drawn = make_bins(client, 20)
    assert len({b["rules_seed"] for b in drawn}) > 1  # 20 draws of 2**31: never all alike
    given = make_bins(client, 3, rules_seed=7)
    assert [b["rules_seed"] for b in given] == [7, 7, 7]


@pytest.mark.parametrize("data", [b"", b"{}"])
def test_batch_with_an_empty_body_makes_default_bins(client, data):
    response = client.post("/api/bins/batch?count=2", data=data, content_type="application/json")
    assert response.status_code == 201
    assert [b["name"] for b in response.get_json()["bins"]] == ["", ""]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?count=",
        "?count=0",
        "?count=101",
        "?count=-1",
        f"?count={2**64}",
        "?count=x",
        "?count=%C2%B2",  # '²': a digit to str.isdigit(), not a number
        "?count=1.5",
        "?count=1e2",
        "?count=" + "9" * 5000,
    ],
)
def test_batch_bad_count_is_400_naming_it(client, query):
    response = client.post(f"/api/bins/batch{query}", json={"name": "x"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("bad_request", "count")
    assert "count" in error["message"] and "100" in error["message"]
    assert len(error["message"]) < 200  # a long value is not echoed whole
    assert listed_ids(client) == set()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"response": {"status": 600}}, "response.status"),
        ({"response": {"delay_ms": -1}}, "response.delay_ms"),
        ({"name": 5}, "name"),
        ({"secret": "not-a-secret"}, "secret"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_batch_bad_field_is_422_naming_it_and_makes_nothing(client, payload, field):
    response = client.post("/api/bins/batch?count=5", json=payload)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert listed_ids(client) == set()


@pytest.mark.parametrize(
    ("data", "code"), [(b"{not json", "invalid_json"), (b"[1]", "not_an_object")]
)
def test_batch_bad_json_is_400(client, data, code):
    response = client.post("/api/bins/batch?count=2", data=data, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert listed_ids(client) == set()


def test_batch_from_another_origin_is_refused(client):
    response = client.post("/api/bins/batch?count=3", json={}, headers={"Origin": EVIL})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_origin"
    assert listed_ids(client) == set()


def test_batch_routes_need_the_token(tmp_path):
    client = create_app(make_settings(tmp_path, token="s3cret")).test_client()
    assert client.post("/api/bins/batch?count=1", json={}).status_code == 401
    assert client.delete(f"/api/bins?ids={MISSING_BIN}").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    [made] = client.post("/api/bins/batch?count=1", json={}, headers=auth).get_json()["bins"]
    assert client.delete(f"/api/bins?ids={made['id']}").status_code == 401
    deleted = client.delete(f"/api/bins?ids={made['id']}", headers=auth).get_json()
    assert deleted == {"deleted": [made["id"]], "not_found": []}


def test_batch_creation_wakes_the_notifier(app, client):
    notifier = get_notifier(app)
    before = notifier.version
    make_bins(client, 3)
    assert notifier.version > before


# -- DELETE /api/bins?ids= ----------------------------------------------------------------------


def test_delete_bins_deletes_those_given_and_keeps_the_others(client):
    kept, *doomed = (b["id"] for b in make_bins(client, 4))
    response = client.delete(f"/api/bins?ids={','.join(doomed)}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": doomed, "not_found": []}
    assert listed_ids(client) == {kept}
    for bin_id in doomed:
        assert client.get(f"/api/bins/{bin_id}").status_code == 404


def test_delete_bins_lists_the_unknown_ids_apart(client):
    first, second = (b["id"] for b in make_bins(client, 2))
    unknown = "b" * 26
    response = client.delete(f"/api/bins?ids={unknown},{second},{MISSING_BIN},{first}")
    assert response.status_code == 200
    # In the order given.
    assert response.get_json() == {"deleted": [second, first], "not_found": [unknown, MISSING_BIN]}
    assert listed_ids(client) == set()
    # Deleted already: no error, nothing deleted.
    again = client.delete(f"/api/bins?ids={first}").get_json()
    assert again == {"deleted": [], "not_found": [first]}


def test_delete_bins_counts_a_repeated_id_once(client):
    [bin_id] = (b["id"] for b in make_bins(client, 1))
    response = client.delete(f"/api/bins?ids={bin_id},{bin_id},{MISSING_BIN},{MISSING_BIN}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": [bin_id], "not_found": [MISSING_BIN]}


def test_delete_bins_takes_spaces_and_empty_items(client):
    first, second = (b["id"] for b in make_bins(client, 2))
    response = client.delete("/api/bins", query_string={"ids": f" {first} ,, {second},"})
    assert response.status_code == 200
    assert response.get_json()["deleted"] == [first, second]


def test_delete_bins_takes_100_ids(client):
    made = [b["id"] for b in make_bins(client, 60)]
    unknown = [("c" * 24) + a + b for a in "defghi" for b in "jklmnop"][:40]
    response = client.delete(f"/api/bins?ids={','.join(made + unknown)}")
    assert response.status_code == 200
    assert response.get_json() == {"deleted": made, "not_found": unknown}
    assert listed_ids(client) == set()


@pytest.mark.parametrize(
    "ids",
    [
        None,  # no ids at all
        "",
        " ",
        ",,,",
        ",".join([MISSING_BIN] * 101),
        ",".join(f"{'c' * 24}{a}{b}" for a in "defghijklm" for b in "nopqrstuvwx"),  # 110
        ",".join([MISSING_BIN] * 300),  # a long query string
    ],
)
def test_delete_bins_needs_1_to_100_ids(client, ids):
    kept = make_bins(client, 1)[0]["id"]
    query = "" if ids is None else f"?ids={ids}"
    response = client.delete(f"/api/bins{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("bad_request", "ids")
    assert "1 to 100" in error["message"]
    assert listed_ids(client) == {kept}


@pytest.mark.parametrize(
    "bad",
    ["nope", "A" * 26, "a" * 25, "a" * 27, "1" * 26, "a" * 25 + "!", "../" + "a" * 23, "%00"],
)
def test_delete_bins_refuses_a_non_id_and_deletes_nothing(client, bad):
    made = [b["id"] for b in make_bins(client, 2)]
    response = client.delete("/api/bins", query_string={"ids": f"{made[0]},{bad},{made[1]}"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("bad_request", "ids")
    assert "is not a bin id" in error["message"]
    assert listed_ids(client) == set(made)


def test_delete_bins_names_a_long_non_id_shortened(client):
    bad = "x" * 3000
    response = client.delete("/api/bins", query_string={"ids": bad})
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert "x" * 40 in message and len(message) < 100


def test_delete_bins_from_another_origin_is_refused(client):
    made = [b["id"] for b in make_bins(client, 2)]
    response = client.delete(f"/api/bins?ids={','.join(made)}", headers={"Origin": EVIL})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_origin"
    assert listed_ids(client) == set(made)


def test_delete_bins_removes_their_captured_requests(app, client, settings):
    doomed, kept = (b["id"] for b in make_bins(client, 2))
    doomed_ids = [capture(client, doomed, bytes([n])) for n in range(3)]
    capture(client, kept)
    assert stored_request_count(settings.db, doomed) == 3

    assert client.delete(f"/api/bins?ids={doomed}").get_json()["deleted"] == [doomed]
    assert stored_request_count(settings.db, doomed) == 0
    assert stored_request_count(settings.db, kept) == 1
    for request_id in doomed_ids:
        assert client.get(f"/api/bins/{doomed}/requests/{request_id}").status_code == 404


def test_a_bin_deleted_in_a_batch_captures_nothing_more(client, settings):
    [bin_id] = (b["id"] for b in make_bins(client, 1))
    capture(client, bin_id)  # the capture path now has the bin in its cache
    client.delete(f"/api/bins?ids={bin_id}")
    response = client.post(f"/b/{bin_id}", data=b"late")
    assert response.status_code == 404
    assert stored_request_count(settings.db, bin_id) == 0


def test_delete_bins_rings_the_bells_of_the_bins_deleted_only(app, client):
    deleted, kept = (b["id"] for b in make_bins(client, 2))
    notifier = get_notifier(app)
    with (
        notifier.bell(deleted) as deleted_bell,
        notifier.bell(kept) as kept_bell,
        notifier.bell(MISSING_BIN) as missing_bell,
    ):
        client.delete(f"/api/bins?ids={deleted},{MISSING_BIN}")
        assert deleted_bell.is_set()
        assert not kept_bell.is_set()
        assert not missing_bell.is_set()


# -- over HTTP: the Client's calls, a long poll on a bin deleted in a batch ----------------------


@pytest.mark.parametrize("lean", [False, True], ids=["requests", "lean"])
def test_client_create_bins_and_delete_bins(live_server, lean):
    client = Client(live_server.url, lean=lean)
    try:
        made = client.create_bins(3, name="batch", response={"status": 204})
        assert [b["name"] for b in made] == ["batch"] * 3
        assert {b["id"] for b in client.bins()} == {b["id"] for b in made}
        assert requests.post(made[0]["url"], timeout=5).status_code == 204

        ids = [b["id"] for b in made]
        assert client.delete_bins([ids[0], MISSING_BIN, ids[2]]) == [ids[0], ids[2]]
        assert [b["id"] for b in client.bins()] == [ids[1]]

        with pytest.raises(HooklabError) as failure:
            client.create_bins(0)
        assert (failure.value.status, failure.value.field) == (400, "count")
        with pytest.raises(HooklabError) as failure:
            client.create_bins(2, response={"status": 99})
        assert (failure.value.status, failure.value.field) == (422, "response.status")
        with pytest.raises(HooklabError) as failure:
            client.delete_bins(["not-a-bin"])
        assert (failure.value.status, failure.value.field) == (400, "ids")
        assert "'not-a-bin' is not a bin id" in failure.value.message
        assert [b["id"] for b in client.bins()] == [ids[1]]
    finally:
        client.close()


def test_a_long_poll_ends_when_its_bin_is_deleted_in_a_batch(live_server):
    bin_id = live_server.create_bin()["id"]
    waiter = threading.current_thread()

    def delete_later():
        wait_until_reading(waiter)
        requests.delete(f"{live_server.url}/api/bins", params={"ids": bin_id}, timeout=5)

    deleter = threading.Thread(target=delete_later, daemon=True)
    deleter.start()
    response = requests.get(
        f"{live_server.url}/api/bins/{bin_id}/requests/wait?timeout=20", timeout=15
    )
    deleter.join()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "bin_not_found"
