"""Loader and validator behaviour beyond the pinned negative fixtures."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.plans import load_plan_set
from engine.plans.model import Unit

REPO = Path(__file__).resolve().parents[3]


def write(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return tmp


BANDS = """
kind: time_bands
id: TB_ANY
timezone: UTC
bands:
  - {id: ANYTIME, days: all}
"""


def test_sample_operator_is_valid() -> None:
    plan_set, problems = load_plan_set([REPO / "plans"], root=REPO)
    assert problems == []
    assert plan_set is not None
    assert {"TP_SMART_S", "TP_SMART_M", "TP_BUSINESS_PRO", "TP_WS_ALPHA", "TP_WS_BETA"} <= set(plan_set.tariff_plans)
    tenants = {p.customer for p in plan_set.tariff_plans.values() if p.segment.value == "wholesale"}
    assert tenants == {"mvno-alpha", "mvno-beta"}


def test_sample_operator_skips_voucher_profiles_and_operator_file() -> None:
    plan_set, _ = load_plan_set([REPO / "plans"], root=REPO)
    assert plan_set is not None
    assert not any("vouchers" in f or f.endswith("operator.yaml") for f in plan_set.files)


def test_naming_a_foreign_file_explicitly_reports_it() -> None:
    _, problems = load_plan_set([REPO / "plans" / "operator.yaml"], root=REPO)
    assert [p.code for p in problems] == ["plan.missing-kind"]


def test_amount_units_and_increment_shorthands(tmp_path: Path) -> None:
    write(tmp_path, {
        "bands.yaml": BANDS,
        "r.yaml": """
            kind: rate
            id: RT_DATA
            unit: byte
            currency: EUR
            price: "0.02"
            per: 1MB
            increments: 100KB/10KB
        """,
    })
    plan_set, problems = load_plan_set([tmp_path])
    assert problems == []
    assert plan_set is not None
    rate = plan_set.rates["RT_DATA"]
    assert rate.unit is Unit.BYTE
    assert [(s.from_unit, s.price_micros, s.per, s.increment) for s in rate.steps] == [
        (0, 20_000, 1_048_576, 102_400), (102_400, 20_000, 1_048_576, 10_240)]


def test_unquoted_clock_times_are_read_as_text(tmp_path: Path) -> None:
    # YAML 1.1 would read 18:00 as the base-60 integer 1080 and 18:00:30 as 64830: the loader reads both as text
    write(tmp_path, {"bands.yaml": """
        kind: time_bands
        id: TB_X
        timezone: UTC
        bands:
          - {id: DAY, days: all, from: 08:00, to: 18:00:30, weight: 1}
          - {id: REST, days: all}
    """})
    plan_set, problems = load_plan_set([tmp_path])
    assert problems == []
    assert plan_set is not None
    window = plan_set.time_bands["TB_X"].bands[0].windows[0]
    assert (window.start_second, window.end_second) == (8 * 3600, 18 * 3600 + 30)


def test_a_number_is_not_a_clock_time(tmp_path: Path) -> None:
    write(tmp_path, {"bands.yaml": """
        kind: time_bands
        id: TB_X
        timezone: UTC
        bands:
          - {id: DAY, days: all, from: 480, to: "18:00", weight: 1}
          - {id: REST, days: all}
    """})
    _, problems = load_plan_set([tmp_path])
    assert (5, 32, "value.time") in [(p.line, p.col, p.code) for p in problems]


def test_a_prefix_file_of_fifty_thousand_lines_loads_whole(tmp_path: Path) -> None:
    """Every line of a large prefix file becomes a prefix of its group, none lost or added.  How fast such a plan
    set loads is measured by bench/bench_rating.py (50,000 prefixes, "load+validate" CPU seconds), not here."""
    prefixes = [str(4_400_000 + i) for i in range(50_000)]
    (tmp_path / "big.prefixes").write_text("\n".join(prefixes) + "\n")
    write(tmp_path, {"d.yaml": "kind: destination_group\nid: DST_BIG\nprefix_file: big.prefixes\n"})
    plan_set, problems = load_plan_set([tmp_path])
    assert problems == []
    assert plan_set is not None and sorted(plan_set.destinations["DST_BIG"].prefixes) == prefixes


def test_problems_from_shared_rate_table_rows_are_reported_once(tmp_path: Path) -> None:
    plan = """
        kind: tariff_plan
        id: {pid}
        tenant: mno
        segment: retail_postpaid
        currency: EUR
        versions:
          - version: 1
            effective_from: 2026-01-01
            time_bands: TB_ANY
            rate_table: RTT_SHARED
    """
    write(tmp_path, {
        "bands.yaml": BANDS,
        "t.yaml": "kind: rate_table\nid: RTT_SHARED\nrates:\n  - {service: voice, rate: RT_NOPE}\n",
        "a.yaml": plan.replace("{pid}", "TP_A"),
        "b.yaml": plan.replace("{pid}", "TP_B"),
    })
    _, problems = load_plan_set([tmp_path], root=tmp_path)
    assert [(p.file, p.line, p.code) for p in problems] == [("t.yaml", 4, "ref.dangling")]


def test_inline_row_overrides_rate_table_row(tmp_path: Path) -> None:
    from engine.plans.resolve import resolve_table

    write(tmp_path, {
        "bands.yaml": BANDS,
        "r1.yaml": 'kind: rate\nid: RT_ONE\ncurrency: EUR\nprice: "0.10"\nper: 60\n',
        "r2.yaml": 'kind: rate\nid: RT_TWO\ncurrency: EUR\nprice: "0.20"\nper: 60\n',
        "t.yaml": "kind: rate_table\nid: RTT_T\nrates:\n  - {service: voice, rate: RT_ONE}\n",
        "p.yaml": """
            kind: tariff_plan
            id: TP_A
            tenant: mno
            segment: retail_postpaid
            currency: EUR
            versions:
              - version: 1
                effective_from: 2026-01-01
                time_bands: TB_ANY
                rate_table: RTT_T
                rates: [{service: voice, rate: RT_TWO}]
        """,
    })
    plan_set, problems = load_plan_set([tmp_path])
    assert problems == [] and plan_set is not None
    table = resolve_table(plan_set.tariff_plans["TP_A"].versions[0], plan_set)
    assert {b.rate for b in table.values()} == {"RT_TWO"}
