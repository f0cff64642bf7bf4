"""Retention: deliveries, attempts and events older than `retention_days` are pruned."""

from __future__ import annotations

from hooklab.app.factory import open_store
from hooklab.sender.catalog import DEFAULT_CATALOG
from hooklab.sender.delivery import DeliveryWorkers
from hooklab.sender.firing import fire
from hooklab.sender.retention import DAY_MS, prune
from hooklab.sender.webhooks import check_fields, create_webhook
from hooklab.shared.clock import now_ms
from tests.conftest import make_settings
from tests.waiting import wait_for

URL = "http://127.0.0.1:9/never-sent"


def log_with_ages(tmp_path, **settings_overrides):
    """A store with three deliveries: finished 40 days ago, finished today, pending 40 days."""
    settings = make_settings(tmp_path, **settings_overrides)
    store = open_store(settings.db)
    store.migrate()
    fields = {"name": "Receiver", "url": URL, "event": "payment_received"}
    create_webhook(store, check_fields(fields, DEFAULT_CATALOG, settings), settings)
    old_done, new_done, old_pending = (
        fire(store, "payment_received")["deliveries"][0]["id"] for _ in range(3)
    )
    old = now_ms() - 40 * DAY_MS
    with store.write() as conn:
        conn.execute("UPDATE deliveries SET status = 'succeeded', next_attempt_at = NULL")
        conn.execute("UPDATE deliveries SET status = 'pending' WHERE id = ?", (old_pending,))
        conn.execute("UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", (2**62, old_pending))
        for delivery_id in (old_done, old_pending):
            conn.execute("UPDATE deliveries SET created_at = ? WHERE id = ?", (old, delivery_id))
            conn.execute(
                "UPDATE events SET created_at = ? WHERE id = "
                "(SELECT event_id FROM deliveries WHERE id = ?)",
                (old, delivery_id),
            )
        for delivery_id in (old_done, new_done):
            conn.execute(
                "INSERT INTO attempts (delivery_id, number, trigger, started_at, finished_at, "
                "url) VALUES (?, 1, 'scheduled', ?, ?, ?)",
                (delivery_id, old, old, URL),
            )
        # An event fired long ago that reached no webhook.
        conn.execute("INSERT INTO events (slug, payload, created_at) VALUES ('x', '{}', ?)", (old,))
    return settings, store, (old_done, new_done, old_pending)


def ids(store, table: str) -> list[int]:
    return [r[0] for r in store.conn.execute(f"SELECT id FROM {table} ORDER BY id")]  # noqa: S608


def test_prune_deletes_what_is_older_than_the_setting_and_keeps_pending(tmp_path):
    _, store, (old_done, new_done, old_pending) = log_with_ages(tmp_path)
    events_before = len(ids(store, "events"))
    counts = prune(store, 30)
    assert counts == {"deliveries": 1, "attempts": 1, "events": 2}
    assert ids(store, "deliveries") == [new_done, old_pending]
    attempts = store.conn.execute("SELECT delivery_id FROM attempts").fetchall()
    assert attempts == [(new_done,)]
    assert len(ids(store, "events")) == events_before - 2
    assert prune(store, 30) == {"deliveries": 0, "attempts": 0, "events": 0}
    store.close()


def test_zero_keeps_everything(tmp_path):
    _, store, _ = log_with_ages(tmp_path)
    assert prune(store, 0) == {"deliveries": 0, "attempts": 0, "events": 0}
    assert len(ids(store, "deliveries")) == 3
    store.close()


def test_the_housekeeper_prunes_on_its_first_idle_moment(tmp_path):
    settings, store, (old_done, new_done, old_pending) = log_with_ages(
        tmp_path, retention_days=30, delivery_workers=1
    )
    workers = DeliveryWorkers(open_store(settings.db), settings)
    stop = workers.start()
    try:
        wait_for(lambda: old_done not in ids(store, "deliveries"), what="the housekeeper's prune")
    finally:
        stop()
    assert ids(store, "deliveries") == [new_done, old_pending]
    store.close()


def test_the_setting_is_shown_with_the_other_limits(client):
    shown = client.get("/api/settings").get_json()["settings"]["retention_days"]
    assert shown["value"] == 30 and shown["env"] == "HOOKLAB_RETENTION_DAYS"
