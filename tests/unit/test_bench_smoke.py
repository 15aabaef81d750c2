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


@pytest.mark.parametrize("name", ["bench_billing", "bench_rerate"])
def test_run_all_skips_the_postgresql_only_benches_without_a_url(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`make bench` without PostgreSQL: the bill run and re-rating (PostgreSQL only) are skipped with a line saying so,
    not a failure."""
    from bench import run_all

    monkeypatch.delenv(run_all.POSTGRES_URL, raising=False)
    monkeypatch.setattr(run_all, "OUT", tmp_path)   # reports of a run that would go wrong stay out of the checkout
    assert run_all.NEEDS_POSTGRES == {"bench_billing", "bench_rerate"}
    assert run_all.main(["--only", name]) == 0
    captured = capsys.readouterr()
    assert f"{name}: skipped, it needs PostgreSQL" in captured.out
    assert f"skipped (no PostgreSQL): {name}" in captured.err and "failed" not in captured.err


def test_the_rerating_bench_without_postgresql_says_it_measured_nothing(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from bench import bench_rerate

    monkeypatch.delenv("RULEBILL_TEST_POSTGRES_URL", raising=False)
    assert bench_rerate.main(["--quick"]) == 2
    assert "measured nothing" in capsys.readouterr().out


def test_run_all_runs_every_bench_script() -> None:
    """`make bench` runs every benchmark in bench/ (docs/BENCHMARKS.md says so)."""
    from bench import run_all

    scripts = {path.stem for path in run_all.HERE.glob("bench_*.py")}
    assert scripts == set(run_all.BENCHMARKS)


@pytest.mark.slow
def test_rating_memory_bench_quick_run_reports_its_peak_and_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """bench_rating_memory --quick (as run_all --quick runs it): a real server process rates 3 messages; the peak RSS
    is at least the floor (the same process's peak before the stream)."""
    from bench import bench_rating_memory

    assert bench_rating_memory.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "RateCdrs, 3 messages of 1,000 CDRs" in out and "ratio peak/floor" in out
    run = next(line for line in out.splitlines() if line.startswith("  run 1:"))
    peak, floor = (int(run.split(label, 1)[1].split()[0].replace(",", "")) for label in ("peak RSS ", "floor "))
    assert peak >= floor > 0
