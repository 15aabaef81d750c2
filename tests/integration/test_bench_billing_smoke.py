"""The billing benchmark still runs (tiny size, PostgreSQL): the figures in docs/BENCHMARKS.md stay reproducible."""

from __future__ import annotations

import os

import pytest

from bench import bench_billing

pytestmark = pytest.mark.integration


def test_billing_bench_runs_and_issues_every_invoice(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get("RULEBILL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not configured: set RULEBILL_TEST_POSTGRES_URL")
    assert bench_billing.main(["--quick", "--postgres", url]) == 0   # asserts every account got its invoice
    out = capsys.readouterr().out
    for label in ("floor: read the period's rated CDRs", "rulebill bill run", "invoices/s"):
        assert label in out
