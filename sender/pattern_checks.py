"""Payload checks against schemas with regular expressions: in a helper process, with a deadline.

jsonschema matches `pattern` and `patternProperties` with Python's `re`, which cannot be
interrupted and holds the interpreter lock while it matches. A pattern prone to catastrophic
backtracking (`^(a+)+$`) in a schema you added or imported, checked against a hostile captured
body, would stall the whole server: every request, the live pages, the deliveries (30 `a`s
and a `b` take minutes). So a check whose schema has a pattern runs in a helper process
(`sender/pattern_helper.py`: one JSON line in, one out), started on first use
and kept for the next checks. The server waits for its answer without holding the lock;
past DEADLINE_S it kills the helper and reports the payload as not checked, and the next
check starts a new one. Schemas without patterns (the built-in events' own) are checked in
process, as before.
"""

from __future__ import annotations

import atexit
import json
import logging
import select
import subprocess
import sys
import threading
import time
from typing import Any

log = logging.getLogger("hooklab")

DEADLINE_S = 2.0  # one check's patterns, at most (a real schema's take milliseconds)
START_S = 20.0  # the helper's start: a new interpreter importing jsonschema


class NotChecked(Exception):
    """The helper gave no answer in time (or could not start); the message says why."""


class RecursionInHelper(RecursionError):
    """The payload or schema is nested too deeply to check (as raised in process)."""


class PatternChecks:
    """The helper process of this server, and the one check it runs at a time."""

    def __init__(self, deadline_s: float = DEADLINE_S) -> None:
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._helper: subprocess.Popen | None = None

    def check(self, schema: dict[str, Any], payload: Any) -> dict[str, Any]:
        """`Checker.check`'s answer for `payload`, worked out by the helper.

        Raises NotChecked past the deadline (the helper is then killed), RecursionInHelper
        when the helper ran out of stack.
        """
        line = json.dumps({"schema": schema, "payload": payload}).encode() + b"\n"
        # Checks wait for each other, but not for longer than one check may take.
        if not self._lock.acquire(timeout=self.deadline_s):
            raise NotChecked(f"other checks held the pattern checker for over {self._limit()}")
        try:
            helper = self._running()
            try:
                helper.stdin.write(line)
                helper.stdin.flush()
                answer = self._read_line(helper, self.deadline_s)
            except (OSError, ValueError):  # the helper died (or was killed) under us
                answer = None
            if answer is None:
                self._kill()
                log.warning(
                    "a payload check was stopped after %s: its schema's patterns were still "
                    "matching (the check answered 'not checked')",
                    self._limit(),
                )
                raise NotChecked(
                    f"the schema's patterns took longer than {self._limit()} to match this "
                    "payload (a pattern prone to catastrophic backtracking?)"
                )
        finally:
            self._lock.release()
        reply = json.loads(answer)
        if reply.get("recursion"):
            raise RecursionInHelper(reply["recursion"])
        if reply.get("failed"):
            raise NotChecked(f"the pattern checker failed ({reply['failed']})")
        return reply["result"]

    def stop(self) -> None:
        """Stop the helper (at exit; a later check starts a new one)."""
        with self._lock:
            self._kill()

    def _limit(self) -> str:
        return f"{self.deadline_s:g} s"

    def _running(self) -> subprocess.Popen:
        if self._helper is not None and self._helper.poll() is None:
            return self._helper
        self._kill()
        try:
            helper = subprocess.Popen(
                [sys.executable, "-m", "hooklab.sender.pattern_helper", str(self.deadline_s)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            why = f"the pattern checker (a helper process) did not start: {exc}"
            raise NotChecked(why) from None
        self._helper = helper
        if self._read_line(helper, START_S) != b"ready\n":
            self._kill()
            raise NotChecked("the pattern checker (a helper process) did not start")
        return helper

    @staticmethod
    def _read_line(helper: subprocess.Popen, within_s: float) -> bytes | None:
        """One line from the helper, or None if none came within `within_s` (or it ended)."""
        out = helper.stdout
        readable = select.poll()  # not select(): a busy server's descriptors pass 1024
        readable.register(out, select.POLLIN)
        parts: list[bytes] = []
        deadline = time.monotonic() + within_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not readable.poll(left * 1000):
                return None
            chunk = out.read1(1 << 16)
            if not chunk:
                return None
            parts.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(parts)

    def _kill(self) -> None:
        helper, self._helper = self._helper, None
        if helper is None:
            return
        helper.kill()
        helper.wait()
        for stream in (helper.stdin, helper.stdout):
            try:
                stream.close()
            except OSError:
                pass


_shared = PatternChecks()
atexit.register(_shared.stop)


def pattern_checks() -> PatternChecks:
    """The helper of this process (one for every app in it)."""
    return _shared
