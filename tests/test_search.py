"""Search: GET /api/bins/<id>/requests?q=&method=&path= over paths, queries, headers, bodies."""

from __future__ import annotations

import json

import pytest

from hooklab.app.factory import open_store
from hooklab.bin_server.schema import SEARCH_TABLES
from hooklab.bin_server.schema import migrations as bin_migrations
from hooklab.bin_server.search import find, fts_query, indexed_up_to, terms
from hooklab.bin_server.search_index import catch_up
from hooklab.shared.context import get_store
from hooklab.shared.store import MAX_ROW_ID

from .waiting import wait_for


@pytest.fixture(params=["indexed", "not indexed yet"])
def bin_id(request, app, client) -> str:
    """A bin of three requests, searched through the index or matched directly."""
    created = client.post("/api/bins", json={}).get_json()
    bin_id = created["id"]
    client.post(
        f"/b/{bin_id}/orders/7?email=ada%40example.com&note=hello+there",
        data=json.dumps({"amount": 4200, "note": "Invoice paid by Zoë"}, ensure_ascii=False),
        content_type="application/json",
        headers={"X-Shop": "Acme-Store", "webhook-id": "msg_first"},
    )
    client.post(
        f"/b/{bin_id}/refunds",
        data=b"refund or not \xff\xfe (invalid utf-8) - done",
        content_type="text/plain",
        headers={"X-Shop": "Other"},
    )
    client.put(
        f"/b/{bin_id}/orders/8",
        data=b'he said "quoted words" NEAR the end',
        content_type="text/plain",
    )
    if request.param == "indexed":
        catch_up(get_store(app))
        assert indexed_up_to(get_store(app).conn) > 0
    return bin_id


def ids(client, bin_id: str, **params) -> list[int]:
    response = client.get(f"/api/bins/{bin_id}/requests", query_string=params)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()]


def paths(client, bin_id: str, **params) -> list[str]:
    response = client.get(f"/api/bins/{bin_id}/requests", query_string=params)
    assert response.status_code == 200, response.get_json()
    return [item["subpath"] for item in response.get_json()]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("acme", ["/orders/7"]),  # a header value
        ("x-shop", []),  # header names are not searched
        ("Other", ["/refunds"]),
        ("invoice", ["/orders/7"]),  # a JSON body
        ("INVOICE PAID", ["/orders/7"]),  # words, any case, all of them
        ("inv", ["/refunds", "/orders/7"]),  # a word prefix: invoice, invalid
        ("voice", []),  # not the middle of a word
        ('"invoice paid"', ["/orders/7"]),  # a phrase in order
        ('"paid invoice"', []),
        ("ZOË", ["/orders/7"]),  # any case, beyond ASCII too
        ("zoe", []),  # but letters stay themselves
        ("ada@example.com", ["/orders/7"]),  # the query, its %40 decoded
        ("hello there", ["/orders/7"]),  # '+' is a space
        ("orders", ["/orders/8", "/orders/7"]),  # the path
        ("refund", ["/refunds"]),  # a body that is not UTF-8 is still searched, no crash
        ("msg_first", ["/orders/7"]),
        ("nothing-like-this", []),
    ],
)
def test_q_searches_paths_queries_header_values_and_text_bodies(client, bin_id, q, expected):
    assert paths(client, bin_id, q=q) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"', None),  # an empty phrase: nothing to look for, so no filter
        ('""', None),
        # No words: looked for as typed (the index holds only words).
        ("(", ["/refunds"]),
        ("*", []),
        ("-", ["/refunds", "/orders/7"]),  # "- done", "Acme-Store"
        ("^", []),
        ('"OR"', ["/refunds"]),  # a word like any other
        ("OR", ["/orders/8", "/refunds", "/orders/7"]),  # or a prefix: orders, or
        ('"or" -', ["/refunds"]),
        ("NOT", ["/refunds", "/orders/7"]),  # not, note
        ("NEAR(", ["/orders/8"]),
        ('"quoted words', ["/orders/8"]),  # an unclosed quote
        ('quoted" "words', ["/orders/8"]),
        ("(invalid utf-8)", ["/refunds"]),
        ("body:refund", []),  # no column filters from outside
        ("refund*", ["/refunds"]),
        ("bin_id:x OR 1", []),
        ("'; DROP TABLE captured_requests; --", []),
    ],
)
def test_any_q_is_valid_and_full_text_syntax_is_taken_as_text(client, bin_id, q, expected):
    every = paths(client, bin_id)
    assert paths(client, bin_id, q=q) == (every if expected is None else expected)
    assert len(paths(client, bin_id)) == 3  # nothing dropped


def test_method_and_path_filters_combine_with_q_and_the_cursor(client, bin_id):
    every = ids(client, bin_id)
    assert paths(client, bin_id, method="put") == ["/orders/8"]
    assert paths(client, bin_id, path="/orders/*") == ["/orders/8", "/orders/7"]
    assert paths(client, bin_id, path="/refunds") == ["/refunds"]
    assert paths(client, bin_id, path="/orders/?") == ["/orders/8", "/orders/7"]  # a glob
    assert paths(client, bin_id, path="*/7") == ["/orders/7"]
    assert paths(client, bin_id, path="orders/[8]") == ["/orders/8"]
    assert paths(client, bin_id, path="/orders") == []
    assert paths(client, bin_id, path="/orders/*", q="invoice") == ["/orders/7"]
    assert paths(client, bin_id, path="/orders/*", method="POST") == ["/orders/7"]
    assert ids(client, bin_id, q="orders", before=every[0]) == [every[2]]
    assert ids(client, bin_id, q="orders", after=every[2]) == [every[0]]
    assert ids(client, bin_id, q="orders", limit=1) == [every[0]]


def test_a_path_filter_pages_through_many_requests(client):
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    for i in range(260):
        client.post(f"/b/{bin_id}/{'wanted' if i % 100 == 0 else 'other'}/{i}", data=b"x")
    assert paths(client, bin_id, path="/wanted/*") == ["/wanted/200", "/wanted/100", "/wanted/0"]
    assert paths(client, bin_id, path="/wanted/*", limit=2) == ["/wanted/200", "/wanted/100"]


def test_each_match_says_where_it_was_found(client, bin_id):
    found = client.get(f"/api/bins/{bin_id}/requests?q=paid").get_json()
    assert found[0]["match"] == {
        "in": "body",
        "before": '{"amount": 4200, "note": "Invoice ',
        "text": "paid",
        "after": ' by Zo\u00eb"}',
    }
    header = client.get(f"/api/bins/{bin_id}/requests?q=acme").get_json()[0]["match"]
    assert header["in"] == "headers" and header["text"] == "Acme"
    listed = client.get(f"/api/bins/{bin_id}/requests").get_json()
    assert all("match" not in item for item in listed)


def test_search_is_per_bin(client, bin_id):
    other = client.post("/api/bins", json={}).get_json()["id"]
    client.post(f"/b/{other}/orders/1", data=b"invoice")
    assert paths(client, other, q="invoice") == ["/orders/1"]
    assert paths(client, bin_id, q="invoice") == ["/orders/7"]


def test_binary_bodies_are_not_indexed(client):
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    client.post(f"/b/{bin_id}", data=b"PNG words inside", content_type="image/png")
    assert paths(client, bin_id, q="words") == []


def test_the_index_follows_eviction_clear_and_delete(tmp_path):
    from hooklab.app.factory import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, max_requests_per_bin=2))
    client, store = app.test_client(), get_store(app)

    def indexed() -> int:
        return sum(
            store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in SEARCH_TABLES
        )

    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    client.post(f"/b/{bin_id}", data=b"alpha")
    catch_up(store)
    assert indexed() == 1
    for word in ("bravo", "charlie"):
        client.post(f"/b/{bin_id}", data=word.encode())
    assert paths(client, bin_id, q="alpha") == []  # evicted
    catch_up(store)
    assert indexed() == 2
    assert paths(client, bin_id, q="alpha") == []
    assert len(paths(client, bin_id, q="charlie")) == 1
    client.delete(f"/api/bins/{bin_id}/requests")
    assert paths(client, bin_id, q="charlie") == []
    catch_up(store)
    assert indexed() == 0
    client.post(f"/b/{bin_id}", data=b"delta")
    catch_up(store)
    client.delete(f"/api/bins/{bin_id}")
    catch_up(store)
    assert indexed() == 0
    assert store.conn.execute("SELECT count(*) FROM captured_search_gone").fetchone()[0] == 0


def test_requests_captured_before_the_index_existed_are_found_and_indexed(tmp_path):
    store = open_store(str(tmp_path / "old.db"))
    later = [m.name for m in bin_migrations._migrations if m.name >= "m003"]
    bin_migrations.apply(store.db, stop_before=later[0])
    store.conn.execute("INSERT INTO bins (id, name, created_at) VALUES ('a', '', 0)")
    store.conn.execute(
        "INSERT INTO captured_requests (bin_id, received_at, method, path, subpath, "
        "query_string, headers, http_version, body, body_size) VALUES "
        "('a', 0, 'POST', '/b/a/old', '/old', '', '[]', 'HTTP/1.1', ?, 9)",
        [b"from then"],
    )
    store.conn.commit()
    store.migrate()
    found = find(store.conn, "a", q="then", before=MAX_ROW_ID, limit=10)
    assert [r["subpath"] for r in found] == ["/old"]
    catch_up(store)
    assert indexed_up_to(store.conn) == found[0]["id"]
    assert find(store.conn, "a", q="then", before=MAX_ROW_ID, limit=10) == found


def test_a_search_spans_indexed_and_newer_requests(app, client):
    store = get_store(app)
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    for i in range(3):
        client.post(f"/b/{bin_id}/old/{i}", data=b"needle")
    catch_up(store)
    for i in range(2):
        client.post(f"/b/{bin_id}/new/{i}", data=b"needle")
    assert paths(client, bin_id, q="needle") == ["/new/1", "/new/0", "/old/2", "/old/1", "/old/0"]
    assert paths(client, bin_id, q="needle", limit=3) == ["/new/1", "/new/0", "/old/2"]
    every = ids(client, bin_id)
    assert ids(client, bin_id, q="needle", before=every[1], limit=2) == every[2:4]


def test_the_start_of_a_big_body_is_searched_the_same_before_and_after_indexing(app, client):
    # Indexing a 10 MiB body whole held the write lock for seconds (captures waited behind it):
    # the first MAX_SEARCHED_BODY characters are searched, by the index and directly alike.
    from hooklab.bin_server.search import MAX_SEARCHED_BODY
    from hooklab.bin_server.search_index import BATCH_TEXT, index_batch

    store = get_store(app)
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    filler = b"x " * (MAX_SEARCHED_BODY // 2)
    body = b"early " + filler + b" late"  # "late" past the searched start
    for i in range(4):
        client.post(f"/b/{bin_id}/big/{i}", data=body, content_type="text/plain")
    for indexed in (False, True):
        assert paths(client, bin_id, q="early") == [f"/big/{i}" for i in (3, 2, 1, 0)], indexed
        assert paths(client, bin_id, q="late") == [], indexed
        if not indexed:
            # At most about BATCH_TEXT characters of text a write transaction: 4 of these
            # bodies (4 x 256 KiB) do not go in one.
            assert MAX_SEARCHED_BODY * 3 > BATCH_TEXT
            first = index_batch(store)
            assert 1 <= first < 4
            catch_up(store)


def test_the_indexer_runs_in_a_live_server(live_server):
    import time

    import requests

    created = live_server.create_bin()
    for i in range(5):
        requests.post(created["url"], data=f"word{i}".encode(), timeout=5)
    store = open_store(live_server.db)
    newest = store.conn.execute("SELECT max(id) FROM captured_requests").fetchone()[0]
    deadline = time.monotonic() + 30
    while indexed_up_to(store.conn) < newest and time.monotonic() < deadline:
        time.sleep(0.1)
    assert indexed_up_to(store.conn) == newest
    found = requests.get(f"{live_server.url}/api/bins/{created['id']}/requests?q=word3", timeout=5)
    assert [r["body_size"] for r in found.json()] == [5]


def test_terms_and_the_match_expression():
    found = terms('pay "in order" -x ( OR')
    assert found == [(["pay"], True), (["in", "order"], False), (["x"], True), (["OR"], True)]
    assert terms("( - *") == []
    assert fts_query('a"b', [(["x"], True)]) == (
        'bin_id : "a""b" AND {subpath query headers body} : ("x"*)'
    )


@pytest.mark.parametrize("indexed", [False, True])
def test_a_q_of_symbols_only_is_looked_for_as_typed(app, client, indexed):
    # Both reviews of the inspector found "€" or "✓" matching every request (no words, no
    # filter): such a q is now a literal, in any case, with a snippet where it was found.
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    for body in ["price in € euro", "check ✓ done", "emoji 🎉 party", "plain words", "a -> b"]:
        client.post(f"/b/{bin_id}/x", data=body.encode(), content_type="text/plain")
    if indexed:
        catch_up(get_store(app))
    found = client.get(f"/api/bins/{bin_id}/requests", query_string={"q": "✓"}).get_json()
    assert [item["match"]["text"] for item in found] == ["✓"]
    assert found[0]["match"]["before"] == "check " and found[0]["match"]["in"] == "body"
    assert len(ids(client, bin_id, q="€")) == 1
    assert len(ids(client, bin_id, q="🎉")) == 1
    assert len(ids(client, bin_id, q="->")) == 1
    assert ids(client, bin_id, q="✓ 🎉") == []  # every term, as with words
    assert ids(client, bin_id, q="§") == []
    assert len(ids(client, bin_id, q="euro €")) == 1  # beside words, the words decide


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize(
    ("body", "q"),
    [
        ("cafe\u0301 au lait", "cafe\u0301"),  # a combining accent (text in NFD): one word
        ("ok\u0301ay", "ok\u0301ay"),  # the same inside a word
        ("नमस्ते दुनिया", "नमस्ते"),  # Devanagari: vowel signs and virama split words, both ways
        ("مَرْحَبًا بالعالم", "مَرْحَبًا"),  # Arabic with its vowel marks (harakat)
    ],
)
def test_words_with_combining_marks_are_found_before_and_after_indexing(
    app, client, indexed, body, q
):
    # The index's tokenizer (FTS5 unicode61) keeps some combining marks inside a word (the
    # combining accents) and splits at others (Devanagari's vowel signs); here every mark split
    # a word, so `cafe` + U+0301 was found before indexing and not after. The match shown ends
    # with the word's marks.
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    client.post(f"/b/{bin_id}/x", data=body.encode(), content_type="text/plain")
    client.post(f"/b/{bin_id}/y", data=b"other words", content_type="text/plain")
    if indexed:
        catch_up(get_store(app))
    found = client.get(f"/api/bins/{bin_id}/requests", query_string={"q": q}).get_json()
    assert [item["subpath"] for item in found] == ["/x"]
    assert found[0]["match"]["text"] == q


def test_a_backlog_is_indexed_at_full_speed_once_captures_stop(app, client, monkeypatch):
    """After a burst, the indexer waits for one pause, then writes batch after batch while no
    capture comes (it paused before every batch, and a burst of 3,000 took 3 s to index, 10 KB
    bodies 6 s); a capture in between brings the pause back, so it still gives way to them."""
    import threading
    import time

    from hooklab.bin_server import search_index

    quiet = 1.0
    monkeypatch.setattr(search_index, "QUIET_S", quiet)
    real_batch = search_index.index_batch
    calls: list[float] = []
    came_between = threading.Event()

    def small_batches(store, limit=search_index.BATCH):
        calls.append(time.monotonic())
        if len(calls) == 3:  # a capture arrives while the third batch is written
            # (close(): the server tells the bin's waiters once it has sent the answer)
            client.post(f"/b/{bin_id}/between", data=b"late").close()
            came_between.set()
        return real_batch(store, 5)

    monkeypatch.setattr(search_index, "index_batch", small_batches)
    bin_id = client.post("/api/bins", json={}).get_json()["id"]
    for n in range(40):  # 8 batches of 5, then the late one
        client.post(f"/b/{bin_id}/burst", data=f"burst {n}".encode())
    store = get_store(app)
    stop = search_index.start_search_indexer(app)
    try:
        # One pause per batch would take 9 * quiet.
        wait_for(lambda: not search_index.behind(store), 5 * quiet, "the backlog indexed")
        assert came_between.is_set()
    finally:
        stop()
    assert len(calls) >= 9
    assert calls[3] - calls[2] >= quiet  # the capture in between: a pause before the next batch
    assert ids(client, bin_id, q="late") and len(ids(client, bin_id, q="burst", limit=100)) == 40
