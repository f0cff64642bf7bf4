"""Bidirectional control characters: in outside text they are shown, never applied.

Applied, one reorders what follows it, past the end of a name or a captured value and into the
text around it ("fdp.exe" after U+202E reads "exe.pdf"). The pages show each as a mark
(app/web.py's `shown` filter, and static/common.js with the same list), the terminal as an
escape (client/terminal.py).
"""

import re

# ALM, LRM, RLM, the embeddings and overrides (U+202A-U+202E), the isolates (U+2066-U+2069).
BIDI_CONTROLS = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
# Splits a text around each of them, keeping them (re.split with a group).
BIDI_SPLIT = re.compile("([" + "".join(chr(code) for code in BIDI_CONTROLS) + "])")
