"""The benchmark scripts still run (tiny sizes): a figure in docs/BENCHMARKS.md must stay reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_mediation


def test_mediation_bench_runs_and_every_side_counts_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_mediation.main(["--rows", "3000", "--runs", "1"]) == 0   # asserts equal row counts itself
    out = capsys.readouterr().out
    for label in ("csv.reader parse only", "C splitter, 18 columns", "rulebill mediation (asterisk)", "ratio mediation/floor"):
        assert label in out


def test_voucher_bench_redemption_part_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The redemption figures in docs/BENCHMARKS.md: every line of the product path, its floor and the RPC path, with
    its clients in this process and in a separate client process (which must have redeemed every voucher)."""
    import logging

    from bench import bench_vouchers

    level = logging.getLogger("rulebill").level
    try:  # the benchmark quiets the server's loggers; the tests after this one read them
        assert bench_vouchers.main(["--quick", "--no-generate", "--redeem", "64", "--backends", "sqlite", "--postgres", ""]) == 0
    finally:
        logging.getLogger("rulebill").setLevel(level)
    out = capsys.readouterr().out
    for label in ("floor: 1 trivial unit", "Recharger.redeem (product path)", "token check per RPC", "Redeem over gRPC, in-process",
                  "Redeem over gRPC, client process", "the client process's:"):
        assert label in out


def test_run_all_skips_the_postgresql_only_bench_without_a_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`make bench` without PostgreSQL: bench_billing (PostgreSQL only) is skipped with a line saying so, not a failure."""
    from bench import run_all

    monkeypatch.delenv(run_all.POSTGRES_URL, raising=False)
    monkeypatch.setattr(run_all, "OUT", tmp_path)   # reports of a run that would go wrong stay out of the checkout
    assert run_all.NEEDS_POSTGRES == {"bench_billing"}
    assert run_all.main(["--only", "bench_billing"]) == 0
    captured = capsys.readouterr()
    assert "bench_billing: skipped, it needs PostgreSQL" in captured.out
    assert "skipped (no PostgreSQL): bench_billing" in captured.err and "failed" not in captured.err
