"""What-if: revenue difference per plan and service between a candidate and the active plan set."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import random
from typing import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS, MediatedCdr, parse_time, read_cdrs, to_row
from engine.rating import whatif
from engine.rating.evaluator import Evaluator
from engine.rating.usage import cycle_of
from engine.rating.whatif import what_if, what_if_paths
from engine.replay import load_assignments
from tests.unit.rating.helpers import REPO, compile_folder

CASE = REPO / "tests" / "golden" / "sample-operator"


def _cdrs() -> list[MediatedCdr]:
    with (CASE / "cdrs.cdr.csv").open() as stream:
        return [c for c in read_cdrs(stream) if isinstance(c, MediatedCdr)]


def _wallets_by_row(compiled: Any, rows: Sequence[Sequence[Any]], plans: Sequence[str]) -> list[dict[str, int] | None]:
    """The oracle of what-if's counters, row by row: the wallet of (a_number, plan, bill cycle in the plan's zone), made
    at its first row with the monthly bundles of the version in force then; None where no bundle or version is."""
    wallets: dict[tuple[str, str, str], dict[str, int]] = {}
    out: list[dict[str, int] | None] = []
    for row, plan_id in zip(rows, plans):
        plan = compiled.plan(plan_id)
        minute = str(row[COLUMNS.index("start_time")])[:16]
        try:
            epoch = int(parse_time(minute + ":00Z").timestamp())
        except ValueError:
            epoch = None
        v = plan.version_at(epoch) if plan is not None and epoch is not None else None
        bundles = tuple((bid, b.allowance) for bid in v.bundles if (b := compiled.bundles.get(bid)) is not None
                        and b.recurrence == "monthly") if v is not None else ()
        if not bundles:
            out.append(None)
            continue
        key = (str(row[COLUMNS.index("a_number")]), plan_id, cycle_of(v.clock.local_day(epoch)))
        out.append(wallets.setdefault(key, dict(bundles)))
    return out


def test_same_plans_make_no_difference() -> None:
    active = compile_folder(CASE / "plans")
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for
    report = what_if(_cdrs(), active, active, plan_for)
    assert report.ok and report.difference_micros == 0
    assert sum(line.cdrs for line in report.lines) == len(_cdrs())


def test_price_rise_shows_per_plan_and_service(tmp_path: Path) -> None:
    shutil.copytree(CASE / "plans", tmp_path / "plans")
    rate = tmp_path / "plans" / "rates" / "retail" / "RT_MMS.yaml"
    rate.write_text(rate.read_text().replace('price: "0.40"', 'price: "0.55"'))
    active = compile_folder(CASE / "plans")
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for
    report = what_if_paths(_cdrs(), [str(tmp_path / "plans")], active, plan_for)
    assert report.ok
    changed = {(line.plan_id, line.service): line.difference_micros for line in report.lines if line.difference_micros}
    assert changed == {("TP_SMART_M", "mms"): 150_000}


def test_invalid_candidate_returns_its_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: rate\nid: RT_X\ncurrency: EUR\nprice: 0.1\nper: 60\n")
    report = what_if_paths(_cdrs(), [str(tmp_path)], compile_folder(CASE / "plans"), {})
    assert not report.ok and report.lines == []
    assert [p.code for p in report.problems] == ["value.amount"]


def test_bundles_are_spent_per_subscriber_and_bill_cycle_on_each_side(tmp_path: Path) -> None:
    """Each side starts every subscriber's bill cycle (Paris time) with its plan's bundles in full: a bigger allowance
    in the candidate shows as less revenue, and the call at 00:30 on 1 April in Paris opens a new cycle."""
    from engine.rating.evaluator import Evaluator
    from tests.unit.rating.helpers import cdr

    shutil.copytree(CASE / "plans", tmp_path / "plans")
    bundle = tmp_path / "plans" / "bundles" / "BN_S_VOICE_120MIN.yaml"
    bundle.write_text(bundle.read_text().replace("amount: 120min", "amount: 200min"))
    active, candidate = compile_folder(CASE / "plans"), compile_folder(tmp_path / "plans")
    # 100 minutes each, national mobile, one subscriber: March has 300 minutes, the fourth call is April's (22:30 UTC)
    calls = [cdr(start=start, duration_seconds=6000, a_number="33612000001")
             for start in ("2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z", "2026-03-04T10:00:00Z", "2026-03-31T22:30:00Z")]
    another = cdr(start="2026-03-05T10:00:00Z", duration_seconds=6000, a_number="33612000002")
    cdrs = [*calls, another]

    def expected(compiled: object, allowance: int, local_cycles: bool = True) -> int:
        ev = Evaluator(compiled)  # type: ignore[arg-type]
        march, april, other = ({"BN_S_VOICE_120MIN": allowance, "BN_S_DATA_2GB": 2 * 1024**3} for _ in range(3))
        wallets = [march, march, march, april if local_cycles else march, other]
        return sum(ev.rate_cdr(c, "TP_SMART_S", w).charge_micros for c, w in zip(cdrs, wallets))

    report = what_if(cdrs, candidate, active, lambda _row: "TP_SMART_S")
    [line] = report.lines
    assert (line.plan_id, line.service, line.cdrs) == ("TP_SMART_S", "voice", 5)
    assert line.active_micros == expected(active, 120 * 60) > 0
    assert line.candidate_micros == expected(candidate, 200 * 60)
    assert line.difference_micros < 0
    assert expected(active, 120 * 60, local_cycles=False) > line.active_micros   # a UTC month would charge the 4th call


def test_lines_add_up_to_what_each_row_was_rated(tmp_path: Path) -> None:
    """The report's lines (counted and summed a chunk at a time) are the per-row sums of the rows' ratings on both sides:
    several plans and services in one chunk, rejected rows (in no line), unrated rows (counted apart), and a chunk of
    one plan (added up by service alone)."""
    from engine.cdr import COLUMNS, to_row
    from engine.rating.evaluator import Evaluator

    shutil.copytree(CASE / "plans", tmp_path / "plans")
    rate = tmp_path / "plans" / "rates" / "retail" / "RT_MMS.yaml"
    rate.write_text(rate.read_text().replace('price: "0.40"', 'price: "0.55"'))
    active, candidate = compile_folder(CASE / "plans"), compile_folder(tmp_path / "plans")
    rows = [to_row(c) for c in _cdrs()]
    bad = list(rows[0])
    bad[COLUMNS.index("duration_seconds")] = "-5"            # rejected
    unknown = list(rows[1])
    unknown[COLUMNS.index("b_number")] = "999999"           # in no destination group: unrated on both sides
    rows = [*rows, bad, unknown, *rows[:5]]
    plan_for = load_assignments(CASE / "subscribers.yaml", []).plan_for_row
    for assign in (plan_for, lambda _row: "TP_SMART_M"):
        report = what_if(rows, candidate, active, assign)
        # the same rows rated side by side, added up one row at a time
        want: dict[tuple[str, str], list[Any]] = {}
        rejected = 0
        plans = [assign(r) for r in rows]
        sides = [Evaluator(c).rate_rows(rows, plans, _wallets_by_row(c, rows, plans)) for c in (active, candidate)]
        for row, plan, a, c in zip(rows, plans, *sides):
            if a[0] == "rejected":
                rejected += 1
                continue
            line = want.setdefault((plan, row[COLUMNS.index("service")]), [0, 0, 0, 0, 0])
            line[0] += 1
            line[1] += a[1] if a[0] == "rated" else 0
            line[2] += c[1] if c[0] == "rated" else 0
            line[3] += a[0] != "rated"
            line[4] += c[0] != "rated"
        got = {(x.plan_id, x.service): [x.cdrs, x.active_micros, x.candidate_micros, x.active_unrated, x.candidate_unrated]
               for x in report.lines}
        assert got == want and report.rejected == rejected == 1
        assert sum(x[3] for x in got.values()) >= 1   # the call to no destination group
        assert all(x.currency == "EUR" for x in report.lines if x.active_unrated < x.cdrs)


_SAMPLE = compile_folder(REPO / "plans")
_SUBS = ["33612000001", "33612000002", "33612000003"]
# around the end of March in Paris (22:00 UTC on the 31st), and a time that is no minute at all
_TIMES = ["2026-03-02T10:00:00Z", "2026-03-31T21:59:30Z", "2026-03-31T22:00:00Z", "2026-04-01T09:00:00Z",
          "2026-02-28T23:30:00Z", "2026-03-15T10:61:00Z"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), chunk=st.sampled_from([1, 3, 7, 20_000]))
def test_chunked_counters_equal_the_row_by_row_oracle(seed: int, chunk: int) -> None:
    """What-if rates a chunk per (plan, bill cycle) with the wallets by a_number, or with every row's wallet when a chunk
    spans cycles: the same ratings, row for row, as wallets made one row at a time (the oracle), whatever the chunking,
    the plans (one for all or per row) and the cycles in a chunk."""
    rng = random.Random(seed)
    rows = _random_rows(rng)
    plans: Any = rng.choice(["TP_SMART_S", "TP_SMART_M"]) if rng.random() < 0.5 else [
        rng.choice(["TP_SMART_S", "TP_SMART_M", "TP_NOPE"]) for _ in rows]
    plan_list = [plans] * len(rows) if isinstance(plans, str) else plans
    want = Evaluator(_SAMPLE).rate_rows(rows, plan_list, _wallets_by_row(_SAMPLE, rows, plan_list))
    wallets, ev = whatif.Wallets(_SAMPLE), Evaluator(_SAMPLE)
    ev.use_kernel = rng.random() < 0.7   # the C loop or the Python loop opens each subscriber's wallet on first use
    got: list[Any] = []
    for k in range(0, len(rows), chunk):
        part = rows[k:k + chunk]
        starts = [r[COLUMNS.index("start_time")] for r in part]
        got += wallets.rate(ev, part, plans if isinstance(plans, str) else plans[k:k + chunk], starts)
    assert [r[:4] for r in got] == [r[:4] for r in want]


def _random_rows(rng: random.Random, roaming: float = 0.0) -> list[list[Any]]:
    """1 to 40 CDR rows of the sample's subscribers at the times of _TIMES (a time that is no minute: rejected either
    way, whatever the wallet), each roaming with probability ``roaming``, each with a cdr_id of its own."""
    rows = []
    for _ in range(rng.randint(1, 40)):
        service = rng.choice(["voice", "voice", "sms", "data"])
        start = rng.choice(_TIMES)
        row = to_row(_cdr(service, rng, start if not start.endswith("61:00Z") else "2026-03-15T10:00:00Z"))
        row[COLUMNS.index("start_time")] = start
        if rng.random() < roaming:
            row[COLUMNS.index("visited_network")] = rng.choice(["CHEAD", "USAAT"])
        row[COLUMNS.index("cdr_id")] = f"cdr-{len(rows)}"
        rows.append(row)
    return rows


def _cdr(service: str, rng: random.Random, start: str) -> MediatedCdr:
    from tests.unit.rating.helpers import cdr

    return cdr(service, b_number=rng.choice(["33698765432", "33612000009", "4930123456"]), start=start,
               duration_seconds=rng.choice([60, 3000, 7200]) if service == "voice" else 0,
               volume_down_bytes=rng.choice([10**6, 3 * 10**9]) if service == "data" else 0, a_number=rng.choice(_SUBS))


def test_a_version_with_other_bundles_within_a_cycle_keeps_each_wallet_as_its_first_row_made_it(tmp_path: Path) -> None:
    """TP_SMART_S v2 from 15 March without the data bundle: a subscriber whose first CDR of March came before keeps
    the data bundle all month, one whose first came after has none (as the row-by-row oracle makes them)."""
    shutil.copytree(REPO / "plans", tmp_path / "plans")
    plan = tmp_path / "plans" / "tariff_plans" / "retail" / "TP_SMART_S.yaml"
    text = plan.read_text().replace("effective_from: 2026-07-01", "effective_from: 2026-03-15")
    head, v2 = text.split("  - version: 2", 1)
    plan.write_text(head + "  - version: 2" + v2.replace("bundles: [BN_S_VOICE_120MIN, BN_S_DATA_2GB]", "bundles: [BN_S_VOICE_120MIN]"))
    compiled = compile_folder(tmp_path / "plans")
    from tests.unit.rating.helpers import cdr

    calls = [("33612000001", "voice", "2026-03-10T10:00:00Z"), ("33612000002", "data", "2026-03-20T10:00:00Z"),
             ("33612000001", "data", "2026-03-20T10:00:00Z"), ("33612000002", "data", "2026-03-21T10:00:00Z"),
             ("33612000001", "data", "2026-04-02T10:00:00Z")]
    rows = [to_row(cdr(s, b_number="33698765432" if s == "voice" else "internet", start=t, a_number=a, duration_seconds=60 if s == "voice" else 0,
                       volume_down_bytes=10**6 if s == "data" else 0)) for a, s, t in calls]
    plans = ["TP_SMART_S"] * len(rows)
    want = Evaluator(compiled).rate_rows(rows, plans, _wallets_by_row(compiled, rows, plans))
    # bundles as the first row of the cycle made them (April: v2, no data bundle)
    assert [r[3] is not None for r in want] == [True, False, True, False, False]
    for chunk in (1, 2, len(rows)):
        wallets, ev = whatif.Wallets(compiled), Evaluator(compiled)
        got: list[Any] = []
        for k in range(0, len(rows), chunk):
            part = rows[k:k + chunk]
            got += wallets.rate(ev, part, "TP_SMART_S", [r[COLUMNS.index("start_time")] for r in part])
        assert [r[:4] for r in got] == [r[:4] for r in want]


def _oracle_lines(rows: Sequence[Sequence[Any]], plans: Sequence[str], active: Any, candidate: Any) -> tuple[dict[Any, list[Any]], int]:
    """The report's lines as the rows rate side by side, each side with wallets made one row at a time (the oracle),
    added up one row at a time: (plan, service) -> [cdrs, active, candidate, active unrated, candidate unrated,
    currency], and the rejected count."""
    want: dict[tuple[str, str], list[Any]] = {}
    rejected = 0
    sides = [Evaluator(c).rate_rows(rows, list(plans), _wallets_by_row(c, rows, plans)) for c in (active, candidate)]
    for row, plan, a, c in zip(rows, plans, *sides):
        if a[0] == "rejected":
            rejected += 1
            continue
        line = want.setdefault((plan, row[COLUMNS.index("service")]), [0, 0, 0, 0, 0, ""])
        line[0] += 1
        line[1] += a[1] if a[0] == "rated" else 0
        line[2] += c[1] if c[0] == "rated" else 0
        line[3] += a[0] != "rated"
        line[4] += c[0] != "rated"
        if not line[5]:
            line[5] = (a[4].currency if a[4] is not None else "") or (c[4].currency if c[4] is not None else "")
    return want, rejected


def _candidate_set() -> Any:
    """The sample plans with national peak calls and SMS dearer, and TP_SMART_S v2 from 15 March without its data
    bundle (so that a bill cycle holds two versions with different bundles on the candidate side)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="rulebill-whatif-")) / "plans"
    shutil.copytree(REPO / "plans", folder)
    for name, old, new in (("RT_VOICE_NATIONAL_PEAK.yaml", 'price: "0.', 'price: "1.'), ("RT_SMS_NATIONAL.yaml", '"0.10"', '"0.13"')):
        rate = folder / "rates" / "retail" / name
        rate.write_text(rate.read_text().replace(old, new))
    plan = folder / "tariff_plans" / "retail" / "TP_SMART_S.yaml"
    text = plan.read_text().replace("effective_from: 2026-07-01", "effective_from: 2026-03-15")
    head, v2 = text.split("  - version: 2", 1)
    plan.write_text(head + "  - version: 2" + v2.replace("bundles: [BN_S_VOICE_120MIN, BN_S_DATA_2GB]", "bundles: [BN_S_VOICE_120MIN]"))
    compiled = compile_folder(folder)
    shutil.rmtree(folder.parent)
    return compiled


_CANDIDATE = _candidate_set()


class _ColumnChunks:
    """Rows as a CDR file's reading gives them: chunks of columns (engine.columns.ColumnRows) of ``size`` rows."""

    def __init__(self, rows: Sequence[Sequence[Any]], size: int) -> None:
        self.rows, self.size = rows, size

    def chunks(self, _size: int) -> Any:
        from engine.columns import ColumnRows

        for k in range(0, len(self.rows), self.size):
            part = self.rows[k:k + self.size]
            yield ColumnRows([list(c) for c in zip(*part)], len(part))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), chunk=st.sampled_from([1, 3, 7, 20_000]), per_row=st.booleans())
def test_what_if_of_rows_read_as_columns_equals_the_row_by_row_oracle(seed: int, chunk: int, per_row: bool) -> None:
    """A CDR file read as columns is rated side by side by the C loop with each row's wallet found by its start minute
    (a plan with the same bundles in every version), or as rows (TP_SMART_S on the candidate side, whose March holds
    two versions with different bundles; plans per row; an unknown plan): the same report as the oracle's, line for
    line, with rejected rows, cycles ending within a chunk, and rows the C loop leaves to the batch loop (SMS with
    a per-CDR discount, calls to other networks, roaming)."""
    rng = random.Random(seed)
    rows = [[str(x) for x in row] for row in _random_rows(rng, roaming=0.1)]
    one = rng.choice(["TP_SMART_S", "TP_SMART_M", "TP_SMART_M", "TP_NOPE"])
    plans = [rng.choice(["TP_SMART_S", "TP_SMART_M"]) if per_row else one for _ in rows]
    by_id = {row[0]: plan for row, plan in zip(rows, plans)}
    want, rejected = _oracle_lines(rows, plans, _SAMPLE, _CANDIDATE)
    report = what_if(_ColumnChunks(rows, chunk), _CANDIDATE, _SAMPLE, lambda row: by_id[row[0]] if per_row else one)
    got = {(x.plan_id, x.service): [x.cdrs, x.active_micros, x.candidate_micros, x.active_unrated, x.candidate_unrated, x.currency]
           for x in report.lines}
    assert got == want and report.rejected == rejected


def test_the_bill_cycle_of_a_start_minute_is_found_once_for_all_its_seconds() -> None:
    """A CDR file has about as many start_time cells as rows: each second of a minute gets the group the minute's bill
    cycle gives (found once), and the minute that ends March in Paris and the one that starts April differ."""
    wallets = whatif.Wallets(_SAMPLE)
    asked: list[str] = []
    cycle = wallets._cycle

    def counted(plan_id: str, minute: str) -> Any:
        asked.append(minute)
        return cycle(plan_id, minute)

    wallets._cycle = counted  # type: ignore[method-assign]
    march = {wallets.group_of("TP_SMART_S", f"2026-03-31T21:59:{s:02d}Z") for s in range(60)}
    april = {wallets.group_of("TP_SMART_S", f"2026-03-31T22:00:{s:02d}Z") for s in range(60)}
    assert asked == ["2026-03-31T21:59", "2026-03-31T22:00"]
    assert len(march) == len(april) == 1 and march != april and min(march | april) >= 0


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.tuples(st.text("0123456789", min_size=1, max_size=5), st.sampled_from(["G1", "G2", "G3"])), max_size=30),
       changed=st.booleans(), numbers=st.lists(st.text("0123456789", max_size=8), max_size=20))
def test_a_candidate_index_with_the_same_prefixes_shares_the_active_ones_tables(entries: list[tuple[str, str]], changed: bool,
                                                                             numbers: list[str]) -> None:
    """A prefix index takes another's tables only when they hold the same prefixes and groups (shared prefixes and
    their order included), and answers every number as before either way."""
    from engine.rating.prefix import PrefixIndex

    priority = {"G1": 3, "G2": 2, "G3": 1}
    # a prefix of the list also in the lowest-priority group: the same plain answers, other candidates
    other_entries = entries + [(entries[0][0], "G3")] if changed and entries else list(entries)
    mine, other = PrefixIndex(entries, priority), PrefixIndex(other_entries, priority)
    before = [(mine.lookup(n), mine.candidates(n)) for n in numbers]
    same = dict(mine.groups) == dict(other.groups) and mine._shared == other._shared
    assert mine.share(other) == same
    assert (mine.groups is other.groups) == same
    assert [(mine.lookup(n), mine.candidates(n)) for n in numbers] == before


def test_what_if_of_a_price_change_reads_one_prefix_table_for_both_sides(tmp_path: Path) -> None:
    shutil.copytree(CASE / "plans", tmp_path / "plans")
    rate = tmp_path / "plans" / "rates" / "retail" / "RT_MMS.yaml"
    rate.write_text(rate.read_text().replace('price: "0.40"', 'price: "0.55"'))
    active, candidate = compile_folder(CASE / "plans"), compile_folder(tmp_path / "plans")
    report = what_if(_cdrs(), candidate, active, load_assignments(CASE / "subscribers.yaml", []).plan_for)
    assert report.ok and report.lines
    for plan_id, plan in candidate.plans.items():
        for v, a in zip(plan.versions, active.plans[plan_id].versions):
            assert v.index.groups is a.index.groups


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), settled=st.sets(st.sampled_from(["voice", "sms", "data", "mms"])))
def test_rows_the_c_loop_adds_up_are_what_rating_them_one_by_one_gives(seed: int, settled: set[str]) -> None:
    """The C loop adds up per service the rated rows of the settled services (no result for them) and keeps every other
    row's result with its index: the kept results are the rows' results, the sums those of the rows not kept, and the
    wallets are spent alike (against the same rows rated into results alone)."""
    from engine.columns import ColumnRows
    from engine.rating.evaluator import RATED

    rng = random.Random(seed)
    rows = [[str(x) for x in row] for row in _random_rows(rng, roaming=0.1)]
    plan = "TP_SMART_M"   # the same bundles in every version: wallets by start minute
    sides = []
    for _ in range(2):
        ev, wallets = Evaluator(_SAMPLE), whatif.Wallets(_SAMPLE)
        ev.minute_book = wallets.book_of
        sides.append((ev, wallets))
    (ev, wallets), (ref_ev, ref_wallets) = sides
    want = ref_wallets.rate(ref_ev, rows, plan, whatif.minutes_of([r[COLUMNS.index("start_time")] for r in rows]))
    # (the candidate side: another evaluator of the same plans, its own wallets)
    other_ev, other_wallets = Evaluator(_SAMPLE), whatif.Wallets(_SAMPLE)
    other_ev.minute_book = other_wallets.book_of
    totals, kept = whatif._sum_by_minute(ColumnRows([list(c) for c in zip(*rows)], len(rows)), plan, settled, (ev, wallets),
                                         (other_ev, other_wallets))[0]
    service = COLUMNS.index("service")
    assert {i: r[:4] for i, r in kept.items()} == {i: want[i][:4] for i in kept}
    summed: dict[str, tuple[int, int]] = {}
    for i, (row, r) in enumerate(zip(rows, want)):
        if i not in kept:
            assert r[0] == RATED and row[service] in settled
            n, charge = summed.get(row[service], (0, 0))
            summed[row[service]] = (n + 1, charge + r[1])
    assert totals == summed
    assert [(p, c, dict(b)) for p, c, b in wallets._groups] == [(p, c, dict(b)) for p, c, b in ref_wallets._groups]
    if not settled:
        assert len(kept) == len(rows)


def _variant(edit: str) -> Any:
    """The sample plans with TP_SMART_M edited: "no_discount" (without its per-CDR discount on international calls,
    which the C loop's sums leave to the batch loop: a side without it takes rows the other leaves), "no_bundles"
    (without its monthly bundles: no wallet on that side)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="rulebill-whatif-")) / "plans"
    shutil.copytree(REPO / "plans", folder)
    plan = folder / "tariff_plans" / "retail" / "TP_SMART_M.yaml"
    text = plan.read_text()
    if edit == "no_discount":
        text = text.replace("discounts: [DP_INTL_CALLS_10PCT, DP_LOYALTY_2EUR]", "discounts: [DP_LOYALTY_2EUR]")
    else:
        text = text.replace("bundles: [BN_M_VOICE_1000MIN, BN_M_SMS_500, BN_M_DATA_10GB]", "bundles: []")
    assert text != plan.read_text()
    plan.write_text(text)
    compiled = compile_folder(folder)
    shutil.rmtree(folder.parent)
    return compiled


_SETS = {"sample": _SAMPLE, "candidate": _CANDIDATE, "no_discount": _variant("no_discount"), "no_bundles": _variant("no_bundles")}


def _walk_per_side(chunk: Any, plan_id: str, settled: set[str], *sides: Any) -> list[Any]:
    """The oracle of whatif._sum_by_minute: what-if's former walk of the columns per side (Evaluator.rate_by_minute,
    each side's C loop over the whole chunk in turn, a row it leaves rated by that side's batch loop)."""
    n = len(chunk)
    outs = []
    for ev, wallets in sides:
        out: list[Any] = []
        where: list[int] = []
        totals: dict[str, tuple[int, int]] = {}
        i = left = 0
        while True:
            i = ev.rate_by_minute(chunk, plan_id, i, out, (settled, totals, where))
            if i >= n:
                break
            left += 1
            end = n if left > whatif._LEFT_AT_MOST else i + 1
            rest = chunk[i:end]
            out.extend(wallets.rate(ev, rest, plan_id, whatif.minutes_of([r[COLUMNS.index("start_time")] for r in rest])))
            where.extend(range(i, end))
            i = end
        outs.append((totals, dict(zip(where, out))))
    return outs


def _added_up(rows: Sequence[Sequence[Any]], settled: set[str], totals: dict[str, tuple[int, int]], kept: dict[int, Any]) -> Any:
    """One side's results with the rated rows of the settled services added up ({service: (rows, charge)}), the
    others' by index (status, charge, rate id, bundle uses, version)."""
    from engine.rating.evaluator import RATED

    sums = dict(totals)
    others = {}
    for i, r in kept.items():
        service = rows[i][COLUMNS.index("service")]
        if r[0] == RATED and service in settled:
            n, charge = sums.get(service, (0, 0))
            sums[service] = (n + 1, charge + r[1])
        else:
            others[i] = r[:5]
    return sums, others


def _both_sides(active: Any, candidate: Any) -> list[Any]:
    sides = []
    for compiled in (active, candidate):
        ev, wallets = Evaluator(compiled), whatif.Wallets(compiled)
        ev.minute_book = wallets.book_of
        sides.append((ev, wallets))
    return sides


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32), active=st.sampled_from(sorted(_SETS)), candidate=st.sampled_from(sorted(_SETS)),
       chunk=st.sampled_from([1, 3, 7, 20_000]), settled=st.sets(st.sampled_from(["voice", "sms", "data", "mms"])),
       share=st.booleans())
def test_one_walk_of_both_sides_equals_a_walk_per_side(seed: int, active: str, candidate: str, chunk: int, settled: set[str],
                                                       share: bool) -> None:
    """_sum_by_minute rates each row under both plan sets in one walk of the columns (its cells read once, its
    destination group found once when the sides share their prefix tables): the same sums, kept results and wallets
    left, side by side and chunk by chunk, as a walk per side (the oracle), with the golden sample plans and variants
    of them (a side whose C loop leaves rows the other takes: a per-CDR discount on one side only; a side without
    bundles: wallets on one side, both or neither), every chunk size, any settled services."""
    from engine.columns import ColumnRows

    rng = random.Random(seed)
    rows = [[str(x) for x in row] for row in _random_rows(rng, roaming=0.1)]
    if share:
        whatif._share_indexes(_SETS[candidate], _SETS[active])
    plan = "TP_SMART_M"   # the same bundles in every version on every set: wallets by start minute
    one, per_side = _both_sides(_SETS[active], _SETS[candidate]), _both_sides(_SETS[active], _SETS[candidate])
    for k in range(0, len(rows), chunk):
        part = rows[k:k + chunk]
        columns = ColumnRows([list(c) for c in zip(*part)], len(part))
        got = whatif._sum_by_minute(columns, plan, settled, *one)
        want = _walk_per_side(columns, plan, settled, *per_side)
        # (a row one side's C loop leaves is rated by the other side's batch loop too: kept by both in one walk, where a
        # walk per side may add it up; the same either way once the rated rows of settled services are added up)
        assert [_added_up(part, settled, *side) for side in got] == [_added_up(part, settled, *side) for side in want]
        # (as what-if settles a service: once its line has its currency)
        got_lines: dict[Any, Any] = {(plan, k): whatif.WhatIfLine(plan, k, "EUR") for k in settled}
        want_lines: dict[Any, Any] = {(plan, k): whatif.WhatIfLine(plan, k, "EUR") for k in settled}
        got_report, want_report = whatif.WhatIfReport(), whatif.WhatIfReport()
        whatif._add_up_sums(columns, plan, *got, got_lines, got_report)
        whatif._add_up_sums(columns, plan, *want, want_lines, want_report)
        assert got_lines == want_lines and got_report == want_report
    for (_ev, got_wallets), (_ev2, want_wallets) in zip(one, per_side):
        assert [(p, c, dict(b)) for p, c, b in got_wallets._groups] == [(p, c, dict(b)) for p, c, b in want_wallets._groups]


def test_the_rating_benchmark_runs_what_if_with_another_kernel_build_in_turn(capsys: Any) -> None:
    """bench_rating --against-kernel: replay and what-if also run with another build of the C row kernel, loaded
    beside the package's own, in the same process; the two give the same results (the benchmark asserts it) and the
    package's own is in place again afterwards."""
    import sys

    import engine.rating._rowkernel as own
    from bench import bench_rating

    other = bench_rating.kernel_build(own.__file__)
    assert other is not own and other.rate_columns is not own.rate_columns
    assert bench_rating.main(["--count", "300", "--repeat", "2", "--against-kernel", own.__file__]) == 0
    printed = capsys.readouterr().out
    assert "what-if, other kernel" in printed and "replay, other kernel" in printed
    assert sys.modules["engine.rating._rowkernel"] is own
