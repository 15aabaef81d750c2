"""``rulebill plans import-cgrates``: a CGRateS tariff-plan folder written for these tests from the documented CSV
format (tutorial style: peak/off-peak timings, stepped rates, connect fees, rounding methods, max cost strategies, a
shared prefix, a fallback subject) imported, validated by the normal loader, and rated: each CDR costs exactly what
the CSV rates imply, computed here independently (exact fractions, rounded as the CSV says).  Bad CSVs: every problem as file:line, nothing written."""

from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from clients.commands.plans import run_import_cgrates
from engine.plans import compile_plan_set, load_plan_set
from engine.plans.cgrates import import_cgrates, seconds
from engine.rating import Evaluator
from tests.unit.rating.helpers import cdr

FIXTURES = Path(__file__).parent / "fixtures" / "cgrates"
TUTORIAL = FIXTURES / "tutorial"


@dataclass(frozen=True)
class Slot:
    start: int
    rate: str
    unit: int
    increment: int


# the tutorial's rates, as Rates.csv and DestinationRates.csv say: (connect fee, slots, rounding, decimals, max cost, strategy)
SLOTS = {
    "10CNT": ("0.2", [Slot(0, "0.1", 60, 60), Slot(60, "0.05", 60, 1)]),
    "20CNT": ("0.4", [Slot(0, "0.2", 60, 60), Slot(60, "0.1", 60, 1)]),
    "40CNT": ("0.8", [Slot(0, "0.4", 60, 30), Slot(60, "0.2", 60, 10)]),
    "1CNT": ("0", [Slot(0, "0.01", 60, 60)]),
    "1CNT_PER_SEC": ("0", [Slot(0, "0.01", 1, 1)]),
}


def cgrates_cost(rates: str, seconds_used: int, method: str, decimals: int, max_cost: str = "0") -> Decimal:
    """What the CSV rates imply for one call: connect fee + each slot's increments (from its GroupIntervalStart,
    the increments counted on one grid from the call's start), rounded by the method, then the maximum cost."""
    connect, slots = SLOTS[rates]
    exact = Fraction(Decimal(connect))
    t = 0
    while t < seconds_used:
        slot = [s for s in slots if s.start <= t][-1]
        exact += Fraction(Decimal(slot.rate)) * slot.increment / slot.unit
        t += slot.increment
    # round the exact sum: Decimal's own division would round each 0.1/60 before the sum does
    scaled = exact * 10**decimals
    whole = {"*up": math.ceil(scaled), "*down": math.floor(scaled), "*middle": math.floor(scaled + Fraction(1, 2))}[method]
    total = Decimal(whole).scaleb(-decimals)
    if Decimal(max_cost) and total > Decimal(max_cost):
        total = Decimal(max_cost)
    return total


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported")
    args = argparse.Namespace(folder=str(TUTORIAL), out=str(out), tenant="mno", currency="EUR")
    report = io.StringIO()
    assert run_import_cgrates(args, report) == 0
    text = report.getvalue()
    # the report names every item not carried over exactly, with file:line
    assert f"{TUTORIAL}/DestinationRates.csv:9: cgrates.unmapped: RoundingDecimals 20" in text
    assert f"{TUTORIAL}/Timings.csv:6: cgrates.unmapped: timing CHRISTMAS: Months" in text
    assert "3 item(s) not mapped exactly" in text
    return out


CASES = [
    # (subject plan, called number, start (UTC), seconds, rates, method, decimals, max cost, flag)
    ("TP_ANY", "10021234", "2026-03-02T10:00:00Z", 90, "20CNT", "*up", 4, "0", False),      # Monday peak
    ("TP_ANY", "10021234", "2026-03-02T07:50:00Z", 125, "10CNT", "*up", 4, "0", False),     # off-peak morning
    ("TP_ANY", "10021234", "2026-03-02T19:00:00Z", 61, "10CNT", "*up", 4, "0", False),      # off-peak evening: later start wins
    ("TP_ANY", "10021234", "2026-03-07T12:00:00Z", 30, "10CNT", "*up", 4, "0", False),      # weekend
    ("TP_ANY", "10991234", "2026-03-02T10:00:00Z", 95, "40CNT", "*up", 4, "0", False),      # DST_FS (10), 30 s / 10 s blocks
    ("TP_ANY", "10991234", "2026-03-02T20:00:00Z", 95, "10CNT", "*up", 4, "0", False),
    ("TP_ANY", "4930123456", "2026-03-02T10:00:00Z", 100, "1CNT_PER_SEC", "*middle", 2, "2.5", False),
    ("TP_ANY", "4930123456", "2026-03-02T10:00:00Z", 400, "1CNT_PER_SEC", "*middle", 2, "2.5", True),   # *disconnect
    ("TP_ANY", "33123456789", "2026-03-02T10:00:00Z", 150, "1CNT", "*down", 2, "1", False),   # 33 in DST_FR (weight 20) and DST_WORLD
    ("TP_ANY", "33123456789", "2026-03-02T10:00:00Z", 7200, "1CNT", "*down", 2, "1", False),  # *free beyond 1.00
    ("TP_N1001", "10031234", "2026-03-02T10:00:00Z", 90, "20CNT", "*up", 4, "0", False),    # RP_RETAIL2 at any time
    ("TP_N1001", "10021234", "2026-03-02T10:00:00Z", 90, "20CNT", "*up", 4, "0", False),    # not in RP_RETAIL2: fallback *any
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}s" for c in CASES])
def test_imported_plans_rate_exactly_what_the_csv_rates_imply(imported: Path, case: tuple) -> None:  # type: ignore[type-arg]
    plan, number, start, used, rates, method, decimals, max_cost, flagged = case
    plan_set, problems = load_plan_set([imported])
    assert plan_set is not None, problems
    rated = Evaluator(compile_plan_set(plan_set)).rate(cdr(b_number=number, start=start, duration_seconds=used), plan)
    assert rated.rated, rated.reason
    want = cgrates_cost(rates, used, method, decimals, max_cost)
    assert Decimal(rated.charge_micros) / 1_000_000 == want, (rated.explanation, want)
    assert rated.flags == (("max-cost-disconnect",) if flagged else ())


def test_sms_with_a_destination_wide_rate(imported: Path) -> None:
    plan_set, _ = load_plan_set([imported])
    assert plan_set is not None
    rated = Evaluator(compile_plan_set(plan_set)).rate(cdr("sms", b_number="4930123456", event_count=3), "TP_ANY_SMS")
    assert rated.charge_micros == 150_000    # 3 x 0.05


def test_the_imported_files_are_plain_plan_files(imported: Path) -> None:
    plan = (imported / "tariff_plans" / "TP_N1001.yaml").read_text()
    assert "extends: TP_ANY" in plan and "effective_from: 2014-01-14" in plan
    world = (imported / "destinations" / "DST_WORLD.yaml").read_text()
    fr = (imported / "destinations" / "DST_FR.yaml").read_text()
    assert "priority: 10" in world and "priority: 20" in fr   # the shared prefix 33 goes to the heavier binding
    rate = (imported / "rates" / "RT_N40CNT.yaml").read_text()
    assert '{from: 60, price: "0.2", per: 60, increment: 10}' in rate and 'connect_fee: "0.8"' in rate


def test_bad_csvs_report_every_problem_by_file_and_line_and_write_nothing(tmp_path: Path) -> None:
    result = import_cgrates(FIXTURES / "bad")
    got = [(Path(p.file).name, p.line, p.code) for p in result.problems]
    assert got == [
        ("Destinations.csv", 3, "cgrates.columns"),
        ("Destinations.csv", 4, "cgrates.prefix"),
        ("Rates.csv", 5, "cgrates.columns"),
        ("Rates.csv", 3, "cgrates.decimals"),
        ("Rates.csv", 4, "cgrates.duration"),
        ("DestinationRates.csv", 2, "cgrates.rounding-method"),
        ("DestinationRates.csv", 3, "cgrates.max-cost-strategy"),
        ("DestinationRates.csv", 4, "cgrates.ref"),
        ("DestinationRates.csv", 4, "cgrates.ref"),
        ("Timings.csv", 2, "cgrates.weekday"),
        ("Timings.csv", 3, "cgrates.time"),
        ("RatingPlans.csv", 3, "cgrates.ref"),
        ("RatingPlans.csv", 3, "cgrates.ref"),
        ("RatingProfiles.csv", 3, "cgrates.time"),
        ("RatingProfiles.csv", 4, "cgrates.ref"),
    ]
    assert result.files == {}
    err = io.StringIO()
    args = argparse.Namespace(folder=str(FIXTURES / "bad"), out=str(tmp_path / "out"), tenant="mno", currency="EUR")
    assert run_import_cgrates(args, err) == 1
    assert not (tmp_path / "out").exists()


def test_durations() -> None:
    assert [seconds(t) for t in ("60s", "1m", "1h30m", "60", "0s", "1m30s")] == [60, 60, 5400, 60, 0, 90]
    assert seconds("0.5s") is None and seconds("100ms") is None and seconds("") is None
