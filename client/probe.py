"""A receiver probe's report, as the server returns it, and its report card for people."""

from __future__ import annotations

from typing import Any

from hooklab.client.http import Record

PASS = "✓"
FAIL = "✗"
DEDUP_NOTE = (
    "De-duplication itself cannot be seen from outside: repeated_id shows only that both "
    "copies got a 2xx."
)


def _text(value: Any) -> str:
    # What a receiver answered is hostile: keep each line one line, no terminal escapes.
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ProbeReport(Record):
    """`{"ok", "checks", "url", "event", "timeout_s"}` from the server; fields read as attributes.

    `report.card()` is the report card as text; `report.raise_for_failures()` raises an
    AssertionError carrying the card when any check failed.
    """

    @property
    def failures(self) -> list[dict]:
        """The checks that failed."""
        return [c for c in self["checks"] if not c["ok"]]

    def check(self, name: str) -> dict:
        """One check by name (`valid_signature`, `stale_timestamp`, …)."""
        for found in self["checks"]:
            if found["name"] == name:
                return found
        raise KeyError(name)

    def card(self) -> str:
        """The report card: one line per check, ✓ or ✗, status and time; for ✗ what a
        correct receiver does."""
        checks = self["checks"]
        width = max(len(c["name"]) for c in checks)
        timeout = self.get("timeout_s")
        lines = [
            f"Probing {_text(self.get('url', 'the receiver'))} with {_text(self.get('event', '?'))}"
            + (f" (timeout {timeout:g} s)" if timeout else "")
        ]
        for check in checks:
            status = "-" if check["status_code"] is None else str(check["status_code"])
            lines.append(
                f"{PASS if check['ok'] else FAIL} {check['name'].ljust(width)}  "
                f"{status:>3}  {check['duration_ms']:>6} ms"
            )
            if not check["ok"]:
                indent = " " * (width + 4)
                lines.append(f"{indent}got: {_text(check['error'])}")
                lines.append(f"{indent}a correct receiver {_text(check['expected'])}")
        passed = len(checks) - len(self.failures)
        lines.append(f"{passed} of {len(checks)} checks passed.")
        lines.append(DEDUP_NOTE)
        return "\n".join(lines)

    def raise_for_failures(self) -> ProbeReport:
        """Raise an AssertionError with the report card when any check failed; else the report."""
        __tracebackhide__ = True
        if self.failures:
            names = ", ".join(c["name"] for c in self.failures)
            raise AssertionError(f"the receiver failed {names}:\n{self.card()}")
        return self
