"""The bulk row path rates exactly like the full rater (differential), and falls back when it must."""

from __future__ import annotations

import csv
import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS, MediatedCdr, read_cdrs, to_row, write_cdrs
from engine.rating import Rater
from engine.rating.bulk import BulkRater
from engine.replay import find_cases, load_assignments
from tests.unit.rating.helpers import REPO, cdr, compile_folder

GOLDEN = REPO / "tests" / "golden"


def test_golden_cdrs_rate_identically_on_both_paths() -> None:
    compared = 0
    for case in find_cases([GOLDEN]):
        compiled = compile_folder(case / "plans")
        assignments = load_assignments(case / "subscribers.yaml", [])
        rater, bulk = Rater(compiled), BulkRater(compiled)
        with (case / "cdrs.cdr.csv").open() as stream:
            cdrs = [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]
        for c in cdrs:
            plan = assignments.plan_for(c)
            full = rater.rate(c, plan)
            status, charge, _ = bulk.row_rater(plan)(to_row(c))
            assert (status, charge) == (full.status.value, full.charge_micros if full.rated else 0), (case.name, c)
            compared += 1
    assert compared > 100


def test_bulk_takes_the_fast_path_for_simple_calls_and_splits_and_falls_back_for_bad_rows() -> None:
    compiled = compile_folder(GOLDEN / "band-split" / "plans")
    bulk = BulkRater(compiled)
    rate = bulk.row_rater("TP_BANDS")
    assert rate(to_row(cdr(start="2026-03-02T10:00:00Z", duration_seconds=60, b_number="33612345678")))[:2] == ("rated", 120_000)
    assert bulk.fallbacks == 0
    # a call crossing a band boundary: two spans, priced on the bulk path (BulkRater._split)
    split = rate(to_row(cdr(start="2026-03-02T18:58:00Z", duration_seconds=240, b_number="33612345678")))
    assert split[:2] == ("rated", 360_000) and "+" in split[2]
    assert bulk.fallbacks == 0
    bad = to_row(cdr(duration_seconds=5))
    bad[COLUMNS.index("duration_seconds")] = "-5"
    assert rate(bad)[0] == "rejected"
    assert bulk.fallbacks == 1


_SAMPLE = compile_folder(REPO / "plans")
_PLANS = ["TP_SMART_S", "TP_SMART_M", "TP_BUSINESS_PRO", "TP_WS_ALPHA", "TP_WS_BETA", "TP_ALPHA_SIMPLE", "TP_BETA_DATA"]
_NUMBERS = ["33612000009", "33698765432", "33123456789", "33891234567", "112", "14155550100", "4930123456", "8816123456",
            "442071234567", "33811234567", "internet", "5511999999999", "999"]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_random_cdrs_rate_identically_on_both_paths(seed: int) -> None:
    rng = random.Random(seed)
    service = rng.choice(["voice", "voice", "sms", "mms", "data", "supplementary"])
    c = cdr(service, b_number=rng.choice(_NUMBERS),
            start=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
            duration_seconds=rng.choice([0, 1, 59, 60, 61, 600, 3600, 20000]) if service == "voice" else 0,
            volume_down_bytes=rng.randint(0, 10**9) if service == "data" else 0,
            event_count=rng.randint(1, 3), visited_network=rng.choice(["", "", "DEUD1", "CHESR", "USACG"]),
            direction=rng.choice(["originating", "originating", "terminating"]), a_number=rng.choice(["33612000001", "33614900001"]))
    plan = rng.choice(_PLANS)
    full = Rater(_SAMPLE).rate(c, plan)
    buf = io.StringIO()
    write_cdrs([c], buf)
    row = list(csv.reader(io.StringIO(buf.getvalue())))[1]
    status, charge, _ = BulkRater(_SAMPLE).row_rater(plan)(row)
    assert (status, charge) == (full.status.value, full.charge_micros if full.rated else 0)
