"""The pattern checker's helper process: `python -m hooklab.sender.pattern_helper DEADLINE_S`.

Started by sender/pattern_checks.py, which says why: it checks payloads against schemas with
regular expressions, one JSON line in and one out, and is killed if a check outlasts its
deadline.
"""

from __future__ import annotations

import json
import signal
import sys

from hooklab.sender.schemas import Checker

MAX_CHECKERS = 64  # compiled schemas kept


def serve(deadline_s: float) -> None:
    """The helper: read `{"schema", "payload"}` lines, answer `{"result"}` lines, for ever.

    Each check arms an alarm a second past the server's deadline: SIGALRM's default action
    ends the process even inside `re`, so a helper whose server is gone does not match on.
    """
    checkers: dict[str, Checker] = {}
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    for line in sys.stdin.buffer:
        signal.setitimer(signal.ITIMER_REAL, deadline_s + 1)
        try:
            message = json.loads(line)
            key = json.dumps(message["schema"], sort_keys=True)
            checker = checkers.get(key)
            if checker is None:
                checker = checkers[key] = Checker.for_schema(message["schema"])
                if len(checkers) > MAX_CHECKERS:
                    checkers.pop(next(iter(checkers)))
            reply = {"result": checker.check_here(message["payload"])}
        except RecursionError as exc:
            reply = {"recursion": str(exc) or "nested too deeply"}
        except Exception as exc:  # said to the server, which answers "not checked"
            reply = {"failed": f"{type(exc).__name__}: {exc}"[:300]}
        signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve(float(sys.argv[1]))
