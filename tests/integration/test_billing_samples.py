"""`rulebill bootstrap` provisions the sample billing accounts with a month of rated usage: a preview is a real bill."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.bootstrap import bootstrap
from servers.root import build_root
from tests.ubl_conformance import check

pytestmark = pytest.mark.integration


def test_bootstrap_samples_make_a_real_bill_at_once(db_url: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=db_url)
    root = build_root(settings, FixedClock(datetime(2026, 5, 6, 9, 0, tzinfo=timezone.utc)))
    try:
        result = bootstrap(settings, root, load_plans=True, samples=True)
        assert result["billing_samples"] == ["ACC-1001", "ACC-1002", "ACC-1003", "ALPHA-2001"]
        desk = root.billing
        bill, xml = desk.runs.preview(replace(SYSTEM, tenant_id="mno"), "mno", "ACC-1001")
        assert (bill.period.start.isoformat(), bill.period.end.isoformat()) == ("2026-04-01", "2026-05-01")
        kinds = {ln.charge_type.value for ln in bill.lines}
        assert {"fee", "usage"} <= kinds and len(bill.usage) > 20
        assert sum(ln.amount_micros for ln in bill.lines if ln.charge_type.value == "usage") > 0
        assert b"<cbc:ID>PREVIEW</cbc:ID>" in xml
        check(xml)
        reverse = desk.runs.preview(replace(SYSTEM, tenant_id="mno"), "mno", "ACC-1003")[0]
        assert {t.tax.code for t in reverse.taxes} == {"AE"}
        again = bootstrap(settings, root, load_plans=True, samples=True)
        assert again["billing_samples"] == "kept"
    finally:
        root.close()
