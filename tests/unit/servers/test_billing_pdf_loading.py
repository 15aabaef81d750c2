"""A library that warns while it loads (weasyprint without HarfBuzz-Subset) must not stop the PDF printer, and so
the server, from starting under a warnings-as-errors filter: the warning is logged instead."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import pytest

from servers.billing_pdf import load_warning_free


def test_a_warning_raised_while_loading_is_logged_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "warns_on_import.py").write_text(
        "import warnings\nwarnings.warn('optional library missing', DeprecationWarning)\nLOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "warns_on_import", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # what the suite's filterwarnings = ["error"] does
        with caplog.at_level(logging.WARNING, logger="rulebill.billing.pdf"):
            module = load_warning_free("warns_on_import")
    assert module.LOADED is True
    assert [r.getMessage() for r in caplog.records] == ["warns_on_import: optional library missing"]


def test_an_import_error_still_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError):
        load_warning_free("no_such_module_for_rulebill_pdf")
