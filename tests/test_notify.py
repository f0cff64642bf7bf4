"""The notifier: every waiter woken by any change, or a bell rung only by its own key's."""

from __future__ import annotations

import threading
import time

import pytest

from hooklab.shared.notify import Notifier


def test_changed_with_or_without_a_key_moves_the_version():
    notifier = Notifier()
    seen = notifier.version
    notifier.changed("bin-a")
    assert notifier.version == seen + 1
    notifier.changed()
    assert notifier.version == seen + 2
    # A waiter on the version (a live page) is woken by a keyed change too: it does not wait.
    assert notifier.wait(seen, timeout=30) == seen + 2


def test_a_bell_rings_for_its_key_and_for_changes_naming_none():
    notifier = Notifier()
    with notifier.bell("bin-a") as bell:
        assert not bell.is_set()
        notifier.changed("bin-b")
        assert not bell.is_set()
        notifier.changed("bin-a")
        assert bell.is_set()
        bell.clear()
        notifier.changed()
        assert bell.is_set()


def test_every_bell_of_a_key_rings():
    notifier = Notifier()
    with notifier.bell("bin-a") as first, notifier.bell("bin-a") as second:
        with notifier.bell("bin-b") as other:
            notifier.changed("bin-a")
            assert first.is_set() and second.is_set()
            assert not other.is_set()


def test_a_bell_set_between_clear_and_wait_is_not_missed():
    # The long poll's order: clear, read the store, wait; a change in between leaves it set.
    notifier = Notifier()
    with notifier.bell("bin-a") as bell:
        bell.clear()
        notifier.changed("bin-a")  # lands while the store is being read
        assert bell.wait(timeout=30) is True


def test_a_bell_wakes_a_thread_waiting_on_it():
    notifier = Notifier()
    waiting = threading.Event()
    rung = []

    def waiter():
        with notifier.bell("bin-a") as bell:
            waiting.set()
            rung.append(bell.wait(timeout=30))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(10)
    notifier.changed("bin-a")
    thread.join(10)
    assert rung == [True]


def test_a_bell_is_rung_no_more_after_its_block():
    notifier = Notifier()
    with notifier.bell("bin-a") as bell:
        pass
    notifier.changed("bin-a")
    notifier.changed()
    assert not bell.is_set()


def test_a_bell_leaves_when_its_block_raises():
    notifier = Notifier()
    with pytest.raises(RuntimeError), notifier.bell("bin-a") as bell:
        raise RuntimeError("the long poll failed")
    notifier.changed("bin-a")
    assert not bell.is_set()


def test_leaving_one_bell_keeps_the_others_of_its_key():
    notifier = Notifier()
    with notifier.bell("bin-a") as outer:
        with notifier.bell("bin-a") as inner:
            pass
        notifier.changed("bin-a")
        assert outer.is_set()
        assert not inner.is_set()
    # And the key can be waited on again once its last bell left.
    with notifier.bell("bin-a") as again:
        notifier.changed("bin-a")
        assert again.is_set()


@pytest.mark.parametrize("key", [None, "bin-a"])
def test_a_thread_sleeping_in_wait_is_woken_by_a_change(key):
    # changed() skips the wake-up when nobody waits (the capture path's case): a sleeper must
    # still be counted and woken, keyed change or not, and leave the count when it wakes.
    notifier = Notifier()
    seen = notifier.version
    woke = []
    thread = threading.Thread(target=lambda: woke.append(notifier.wait(seen, timeout=30)))
    thread.start()
    deadline = time.monotonic() + 10
    while notifier._sleepers == 0 and time.monotonic() < deadline:
        time.sleep(0.001)  # until the thread is inside wait(): the state this test is about
    assert notifier._sleepers == 1
    notifier.changed(key)
    thread.join(10)
    assert woke == [seen + 1]
    assert notifier._sleepers == 0


def test_a_wait_that_times_out_leaves_the_sleeper_count():
    notifier = Notifier()
    assert notifier.wait(notifier.version, timeout=0.01) == 0
    assert notifier._sleepers == 0


def test_nudge_wakes_as_many_waiters_as_asked_and_moves_the_version():
    notifier = Notifier()
    seen = notifier.version
    woken = []
    threads = [
        threading.Thread(target=lambda: woken.append(notifier.wait(seen, timeout=30)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while notifier._sleepers < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert notifier._sleepers == 3
    notifier.nudge(1)

    def threads_alive() -> int:
        return sum(thread.is_alive() for thread in threads)

    deadline = time.monotonic() + 10
    while threads_alive() > 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert woken == [seen + 1]
    time.sleep(0.1)  # a notify_all would have ended the two others by now
    assert threads_alive() == 2
    # A thread about to wait with the old version does not: the nudge is not lost on it.
    assert notifier.wait(seen, timeout=30) == seen + 1
    notifier.nudge(2)
    for thread in threads:
        thread.join(10)
    assert woken == [seen + 1, seen + 2, seen + 2]
