"""Free text from callers that reaches a log line: control characters and line or paragraph separators let a caller
write a line of its own into the server's log (a forged access-log entry)."""

from __future__ import annotations

import unicodedata

# Cc: C0 and C1 controls (NUL, tab, CR, LF, ESC, NEL ...); Zl, Zp: U+2028 LINE and U+2029 PARAGRAPH SEPARATOR
LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})
NO_CONTROLS = "must not contain control characters (newline, tab, escape ...) or line/paragraph separators"


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character of a category in LINE_BREAKING."""
    return not text.isprintable() and any(unicodedata.category(c) in LINE_BREAKING for c in text)


def one_line(text: str) -> str:
    """``text`` with every such character written as its escape (``\\n``, ``\\x1b``, ``\\u2028``), fit for one log line."""
    if not has_controls(text):
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in LINE_BREAKING else c for c in text)


__all__ = ["LINE_BREAKING", "NO_CONTROLS", "has_controls", "one_line"]
