"""`rulebill bootstrap` provisions the sample billing accounts with a month of usage, stored and rated: a preview is a
real bill, re-rating finds the CDRs, and the files of samples/ are rated; the same whatever today's date."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.billing_samples import SAMPLE_MONTH
from servers.bootstrap import bootstrap
from servers.root import build_root
from tests.integration.conftest import fresh_database
from tests.ubl_conformance import check

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CDRS = 260          # plans/billing/samples.yaml: calls + SMS + data_mb / 150 of each subscriber
US_CALLS_ON_ALPHA = 3      # TP_ALPHA_SIMPLE is national-only: its three calls to the US stay unrated


@pytest.fixture(params=[datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc), datetime(2027, 3, 15, 9, 0, tzinfo=timezone.utc)],
                ids=["month-after-the-samples", "months-later"])
def today(request: pytest.FixtureRequest) -> datetime:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture()
def fresh_db_url(db_url: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of its own for each date, on the module's database kind (bootstrap runs once per database)."""
    yield from fresh_database("postgres" if db_url.startswith("postgresql") else "sqlite", request, tmp_path_factory)


def test_bootstrap_samples_make_a_real_bill_at_once(fresh_db_url: str, tmp_path: Path, today: datetime) -> None:
    settings = Settings(home=tmp_path, database_url=fresh_db_url)
    root = build_root(settings, FixedClock(today))
    operator = replace(SYSTEM, tenant_id="mno", subject="test", is_operator=True)
    try:
        result = bootstrap(settings, root, load_plans=True, samples=True)
        assert result["billing_samples"] == ["ACC-1001", "ACC-1002", "ACC-1003", "ALPHA-2001"]
        assert result["billing_sample_usage"] == {"month": "2026-11", "cdrs": SAMPLE_CDRS, "rated": SAMPLE_CDRS - US_CALLS_ON_ALPHA,
                                                  "unrated": US_CALLS_ON_ALPHA}
        desk = root.billing
        bill, xml = desk.runs.preview(replace(SYSTEM, tenant_id="mno"), "mno", "ACC-1001")
        assert (bill.period.start, bill.period.end.isoformat()) == (SAMPLE_MONTH, "2026-12-01")
        kinds = {ln.charge_type.value for ln in bill.lines}
        assert {"fee", "usage"} <= kinds and len(bill.usage) > 20
        assert sum(ln.amount_micros for ln in bill.lines if ln.charge_type.value == "usage") > 0
        assert b"<cbc:ID>PREVIEW</cbc:ID>" in xml
        check(xml)
        reverse = desk.runs.preview(replace(SYSTEM, tenant_id="mno"), "mno", "ACC-1003")[0]
        assert {t.tax.code for t in reverse.taxes} == {"AE"}
        # the README's re-rate step: the stored sample month, rated again with the same charges
        rerated = root.rerate.rerate(operator, "mno", datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc), 1)
        assert (rerated.cdrs, rerated.rated, rerated.unrated) == (SAMPLE_CDRS, SAMPLE_CDRS - US_CALLS_ON_ALPHA, US_CALLS_ON_ALPHA)
        assert rerated.charged_before == rerated.charged_after and rerated.charged_after["EUR"] > 0
        # the README's `mediate samples/msc_generic/msc.csv --remote --rate`: every call of samples/ is rated
        data = (REPO / "samples" / "msc_generic" / "msc.csv").read_bytes()
        summary = root.mediation.mediate(operator, "msc_generic", io.BytesIO(data), hashlib.sha256(data).hexdigest(), "msc.csv", rate=True)
        assert (summary.normalised, summary.rated, summary.unrated) == (5, 5, 0)
        again = bootstrap(settings, root, load_plans=True, samples=True)
        assert again["billing_samples"] == "kept" and "billing_sample_usage" not in again
    finally:
        root.close()
