"""The billing benchmark still runs (tiny size, PostgreSQL): the figures in docs/BENCHMARKS.md stay reproducible."""

from __future__ import annotations

import os
import uuid

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


def test_a_kept_database_is_billed_again_and_the_ledger_in_arrival_order(capsys: pytest.CaptureFixture[str]) -> None:
    # --database keeps the seeded rows for old/new pairs: the second run empties what the first billed and issues every
    # invoice again; --ledger-order arrival seeds the ledger in start-time order (rating's order)
    url = os.environ.get("RULEBILL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not configured: set RULEBILL_TEST_POSTGRES_URL")
    from sqlalchemy import create_engine, text

    from store.db import normalise_url

    name = f"rb_bench_kept_smoke_{uuid.uuid4().hex[:10]}"   # its own: the server is shared with other tests and workers
    try:
        for seeded in (False, True):
            assert bench_billing.main(["--quick", "--no-references", "--digest", "--ledger-order", "arrival", "--database", name,
                                       "--postgres", url]) == 0
            out = capsys.readouterr().out
            assert ("kept from an earlier run" in out) is seeded, out
            assert "ledger in arrival order" in out and "SHA-256 of the 300 invoices'" in out
    finally:
        admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
