"""Outside text for a terminal: what a server, a receiver or a captured request sent, shown as
text only (the CLI's output and the pytest fixture's failure messages)."""

from __future__ import annotations

import json
from typing import Any

from hooklab.shared.bidi import BIDI_CONTROLS

# Characters a terminal acts on instead of showing: C0 and C1 controls (ESC starts colour and
# cursor sequences, U+009B is the one-byte CSI), DEL, and the bidirectional overrides that
# reorder what is shown. Captured data is hostile, so they are printed as visible escapes.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Half a UTF-16 pair alone (JSON's "\\ud800" escape makes one) is no text: the terminal's
# encoder refuses it, so it is shown as its escape too.
_SURROGATES = range(0xD800, 0xE000)
_ESCAPED = [*BIDI_CONTROLS, *_SURROGATES]
_ONE_LINE = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _ESCAPED}
_ONE_LINE |= {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_MULTILINE = {c: e for c, e in _ONE_LINE.items() if c not in (0x09, 0x0A)}
# In JSON text the C0 controls are already escaped by json.dumps; the rest may only appear
# inside strings, where a \uXXXX escape is the same JSON value.
_JSON = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *_ESCAPED]}


def visible(text: Any, multiline: bool = False) -> str:
    """Captured text safe for a terminal: control characters shown escaped (ESC as \\x1b).

    One line by default (newlines and tabs escaped too); `multiline` keeps them (bodies).
    """
    return str(text).translate(_MULTILINE if multiline else _ONE_LINE)


def json_text(data: Any, indent: int | None = None) -> str:
    """JSON for the terminal or a script: the same value, with no raw control characters."""
    return json.dumps(data, indent=indent, ensure_ascii=False).translate(_JSON)
