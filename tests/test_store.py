"""Small helpers of the store."""

import threading

import pytest

from hooklab.shared.store import Store, row_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7), (7, 7), (2**63 - 1, 2**63 - 1), (2**63, None), (0, None), ("-3", None),
     ("abc", None), (None, None)],
)  # fmt: skip
def test_row_id_is_none_for_ids_no_row_can_have(value, expected):
    assert row_id(value) == expected


def test_what_is_attached_may_attach_more_when_it_is_made(tmp_path):
    # A forward queue made on first use keeps the captures notifier, made on first use too.
    store = Store(tmp_path / "x.db")
    made = []

    def queue():
        made.append(store.notifier("captures"))
        return "queue"

    worker = threading.Thread(
        target=lambda: made.append(store.attached("queue", queue)), daemon=True
    )
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "attached() deadlocked on a nested first use"
    assert made == [store.notifier("captures"), "queue"]
