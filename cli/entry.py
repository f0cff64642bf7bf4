"""The entry point of the `hooklab` script, kept small: Ctrl-C while the command loads.

Loading the command (click, requests and the rest) takes about half a second; a Ctrl-C in that
time raised KeyboardInterrupt inside some import, and Python printed its traceback. Here it
ends the command as a Ctrl-C later does (cli/common.py): one line, exit 130.
"""

import sys

INTERRUPTED = 130  # as cli/common.py INTERRUPTED (not imported from there: it loads click)


def main() -> None:
    """Load the command and run it."""
    try:
        from hooklab.cli.main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("\nStopped (Ctrl-C).\n")
        sys.exit(INTERRUPTED)
    run()
