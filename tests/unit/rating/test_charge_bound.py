"""A CDR whose charge ends beyond engine.money.MAX_AMOUNT_MICROS is rejected with its reason, by every way the evaluator
rates (the C loop, the Python batch loop, the per-CDR way), and gives back the bundle units it took, so the rows after it
in the same chunk see the wallet as if it had never been rated."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.cdr import Direction, MediatedCdr, Service
from engine.money import MAX_AMOUNT_MICROS
from engine.plans.compiler import build_ir
from engine.plans.loader import load_plan_texts, plan_files
from engine.rating.compiled import CompiledPlans
from engine.rating.evaluator import Evaluator, row_of
from engine.rating.result import RatingStatus

REPO = Path(__file__).resolve().parents[3]
GB2 = 2 * 1024**3


@pytest.fixture(scope="module")
def compiled() -> CompiledPlans:
    files = plan_files(REPO / "plans")
    name = "rates/retail/RT_DATA_HOME.yaml"
    files[name] = files[name].replace('price: "0.02"', 'price: "999999999"')
    plan_set, problems = load_plan_texts(files)
    assert problems == []
    return CompiledPlans.from_ir(build_ir(plan_set))


def _data(n: int, volume: int) -> MediatedCdr:
    return MediatedCdr(f"c{n}", "t", f"o{n}", Service.DATA, Direction.ORIGINATING, datetime(2026, 2, 3, 9, n, tzinfo=timezone.utc),
                       "33611111111", "internet", volume_down_bytes=volume, tenant="mno")


@pytest.mark.parametrize("kernel", [True, False], ids=["c-loop", "python"])
def test_rows_beyond_the_bound_are_rejected_and_take_no_bundle_units(compiled: CompiledPlans, kernel: bool) -> None:
    ev = Evaluator(compiled)
    ev.use_kernel = kernel and ev.use_kernel
    wallet = {"BN_S_DATA_2GB": GB2}
    rows = [row_of(_data(1, 10**12)), row_of(_data(2, 10**6)), row_of(_data(3, 10**12)), row_of(_data(4, 10**6))]
    out = ev.rate_rows(rows, "TP_SMART_S", [wallet] * 4)
    assert [r[0] for r in out] == ["rejected", "rated", "rejected", "rated"]
    assert "beyond what one CDR is charged" in out[0][2] and "EUR" in out[0][2]
    assert [r[1] for r in out] == [0, 0, 0, 0]   # the megabytes within the bundle
    assert GB2 - 2_100_000 <= wallet["BN_S_DATA_2GB"] < GB2
    # without a wallet: a megabyte at 999999999 per MB is within the bound, a terabyte is not
    out = ev.rate_rows(rows, "TP_SMART_S")
    assert [r[0] for r in out] == ["rejected", "rated", "rejected", "rated"]
    assert 0 < out[1][1] <= MAX_AMOUNT_MICROS


def test_only_a_plan_set_that_can_charge_beyond_the_bound_has_its_rows_checked(compiled: CompiledPlans) -> None:
    """The check costs nothing where no rate can reach the bound within the CDR limits (the shipped plans)."""
    plan_set, problems = load_plan_texts(plan_files(REPO / "plans"))
    assert problems == [] and not Evaluator(CompiledPlans.from_ir(build_ir(plan_set))).may_exceed
    assert Evaluator(compiled).may_exceed


def test_one_cdr_beyond_the_bound(compiled: CompiledPlans) -> None:
    wallet = {"BN_S_DATA_2GB": GB2}
    rated = Evaluator(compiled).rate_cdr(_data(1, 10**12), "TP_SMART_S", wallet)
    assert rated.status is RatingStatus.REJECTED and rated.charge_micros == 0 and "beyond" in rated.reason
    assert wallet == {"BN_S_DATA_2GB": GB2}


def test_what_if_over_columns_counts_a_charge_beyond_the_bound_unrated() -> None:
    """The what-if walk of the C loop by start minute (engine.rating.whatif over a CDR file's columns): 47-hour calls at
    999999999 a minute came to 8.3 * 10**18 micros (next to int64's end) as a candidate's charge; now each is rejected."""
    import re

    from engine.columns import ColumnRows
    from engine.rating.whatif import what_if

    def priced(price: str) -> CompiledPlans:
        files = plan_files(REPO / "plans")
        for name in [n for n in files if n.startswith("rates/retail/RT_VOICE_NATIONAL")]:
            files[name] = re.sub(r'price: "[0-9.]+"', f'price: "{price}"', files[name])
        plan_set, problems = load_plan_texts(files)
        assert problems == []
        return CompiledPlans.from_ir(build_ir(plan_set))

    calls = [row_of(MediatedCdr(f"v{i}", "t", f"v{i}", Service.VOICE, Direction.ORIGINATING, datetime(2026, 2, 3, 3, i, tzinfo=timezone.utc),
                                "33611111111", "33140000000", duration_seconds=47 * 3600, tenant="mno")) for i in range(3)]
    columns = ColumnRows([list(col) for col in zip(*calls)], len(calls))

    class File:
        def chunks(self, size: int):  # type: ignore[no-untyped-def]
            yield columns

    [line] = what_if(File(), priced("999999999"), priced("0"), {"mno": "TP_SMART_S"}).lines
    assert (line.cdrs, line.candidate_micros, line.candidate_unrated, line.active_unrated) == (3, 0, 3, 0)
