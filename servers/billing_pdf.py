"""The PDF printer of human-readable bills: weasyprint (needs Pango, see the README) turns the HTML bill into PDF."""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from types import ModuleType
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
        load_warning_free("weasyprint")
    except (ImportError, OSError) as exc:
        log.warning("PDF bills are off: weasyprint cannot load (%s)", exc)
        return None
    return weasyprint_printer


def load_warning_free(name: str) -> ModuleType:
    """Import ``name`` with the warnings it raises while loading logged, not raised: weasyprint warns at import when
    an optional system library (HarfBuzz-Subset) is missing, which under a warnings-as-errors filter (the test suite's)
    would otherwise stop the server from starting instead of only making its PDFs larger."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    for w in caught:
        log.warning("%s: %s", name, w.message)
    return module
