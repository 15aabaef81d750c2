"""The PDF printer of human-readable bills: weasyprint (needs Pango, see the README) turns the HTML bill into PDF."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("rulebill.billing.pdf")
_lock = threading.Lock()


def weasyprint_printer(html: str) -> bytes:
    from weasyprint import HTML  # imported on first use: loading Pango costs ~0.3 s

    with _lock:  # weasyprint's font machinery is not meant to be shared by threads
        return HTML(string=html).write_pdf()


def printer() -> Callable[[str], bytes] | None:
    """The printer when weasyprint and its system libraries load, else None (PDF downloads then say why)."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        log.warning("PDF bills are off: weasyprint cannot load (%s)", exc)
        return None
    return weasyprint_printer
