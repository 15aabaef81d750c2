"""Validate generated UBL 2.1 invoices and credit notes against the real thing: the OASIS XSD (lxml) and the
official EN 16931 UBL validation XSLT (saxonche, XSLT 2). Both come from ``../shared/conformance/invoice``;
callers skip when it is absent (``conformance_dir()``).

Every billing test that generates a document passes it through :func:`assert_valid` (the integration tests
validate every document their database holds when the module ends).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import conformance_dir

INVOICE_DIR = "invoice"
_lock = threading.RLock()
_FAILED = re.compile(r'<svrl:failed-assert\b[^>]*?\bid="([^"]+)"[^>]*?\bflag="([^"]+)"', re.S)
_FAILED_ALT = re.compile(r'<svrl:failed-assert\b[^>]*?\bflag="([^"]+)"[^>]*?\bid="([^"]+)"', re.S)


def corpus() -> Path:
    path = conformance_dir() / INVOICE_DIR
    if not (path / "ubl21" / "maindoc").is_dir() or not (path / "en16931" / "EN16931-UBL-validation.xslt").is_file():
        pytest.skip(f"UBL/EN 16931 conformance files not found under {path} (set RULEBILL_CONFORMANCE_DIR)")
    return path


@lru_cache(maxsize=2)
def _schema(root: str) -> etree.XMLSchema:
    name = {"Invoice": "UBL-Invoice-2.1.xsd", "CreditNote": "UBL-CreditNote-2.1.xsd"}[root]
    return etree.XMLSchema(etree.parse(str(corpus() / "ubl21" / "maindoc" / name)))


class _Schematron:
    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.proc = PySaxonProcessor(license=False)
        self.exe = self.proc.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(corpus() / "en16931" / "EN16931-UBL-validation.xslt"))

    def failed(self, xml: bytes) -> list[tuple[str, str]]:
        node = self.proc.parse_xml(xml_text=xml.decode("utf-8"))
        report = self.exe.transform_to_string(xdm_node=node) or ""
        found = [(m.group(1), m.group(2)) for m in _FAILED.finditer(report)]
        found += [(m.group(2), m.group(1)) for m in _FAILED_ALT.finditer(report)]
        return sorted(set(found))


_saxon: dict[str, Any] = {}


def schematron() -> _Schematron:
    with _lock:
        if "s" not in _saxon:
            _saxon["s"] = _Schematron()
        return _saxon["s"]  # type: ignore[no-any-return]


def xsd_errors(xml: bytes) -> list[str]:
    doc = etree.fromstring(xml)
    root = etree.QName(doc).localname
    schema = _schema(root)
    if schema.validate(doc):
        return []
    return [f"{err.line}: {err.message}" for err in schema.error_log]  # type: ignore[attr-defined]


def schematron_failures(xml: bytes) -> list[tuple[str, str]]:
    """(rule id, flag) of every failed EN 16931 assertion."""
    with _lock:
        return schematron().failed(xml)


def assert_valid(xml: bytes, allow: tuple[str, ...] = ()) -> None:
    """XSD-valid and no failed EN 16931 rule (fatal or warning), except the rule ids in ``allow``."""
    errors = xsd_errors(xml)
    assert not errors, "UBL 2.1 XSD: " + "; ".join(errors[:10])
    failed = [f for f in schematron_failures(xml) if f[0] not in allow]
    assert not failed, f"EN 16931 rules failed: {failed}"


def check(xml: bytes) -> None:
    """assert_valid when the conformance corpus is here; tests about something else do not skip without it."""
    path = conformance_dir() / INVOICE_DIR
    if (path / "ubl21" / "maindoc").is_dir() and (path / "en16931" / "EN16931-UBL-validation.xslt").is_file():
        assert_valid(xml)
