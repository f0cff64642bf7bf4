"""Waiting for another thread or process to reach a state: poll it, with a deadline."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_S = 0.02


def wait_for(check: Callable[[], T], timeout: float = 8.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


def is_reading_a_socket(thread: threading.Thread) -> bool:
    """Whether `thread` is blocked reading a socket right now (waiting for an answer)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        code = frame.f_code
        if code.co_name in ("readinto", "recv_into", "recv") and code.co_filename.endswith(
            "socket.py"
        ):
            return True
        frame = frame.f_back
    return False


def wait_until_reading(thread: threading.Thread, timeout: float = 8.0) -> None:
    """Wait until `thread` sent its request and waits for the answer (e.g. a long poll)."""
    wait_for(lambda: is_reading_a_socket(thread), timeout, what=f"{thread.name} to be waiting")
