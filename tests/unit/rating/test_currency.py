"""Money follows the currency (ISO 4217 minor units): rounding without explicit decimals, display, alert texts,
amounts a bill cannot carry refused by the validator, alert thresholds that refuse YAML floats."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.eventrules import CreditFact, load_rules
from engine.money import format_amount, has_finer_decimals
from engine.plans import load_plan_set
from engine.plans.compiler import build_ir
from engine.yamlio import Problem
from tests.unit.rating.helpers import REPO


@pytest.mark.parametrize(("micros", "currency", "text"), [
    (700_000, "EUR", "0.70"), (716_667, "EUR", "0.716667"), (1_200_000_000, "JPY", "1200"), (1_500_000, "JPY", "1.5"),
    (125_000, "KWD", "0.125"), (1_000_000, "KWD", "1.000"), (-2_000_000, "BHD", "-2.000"), (700_000, "", "0.70"),
])
def test_amounts_show_at_least_the_currencys_minor_units_and_never_lose_digits(micros: int, currency: str, text: str) -> None:
    assert format_amount(micros, currency) == text


def test_finer_than_the_currency() -> None:
    assert has_finer_decimals(1_500_000, "JPY") and not has_finer_decimals(2_000_000, "JPY")
    assert has_finer_decimals(1_000_500, "KWD") and not has_finer_decimals(1_001_000, "KWD")
    assert has_finer_decimals(9_999_000, "EUR") and not has_finer_decimals(9_990_000, "EUR")


def _files(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, int, int, str]]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    _, problems = load_plan_set([tmp_path])
    return [(Path(p.file).name, p.line, p.col, p.code) for p in sorted(problems)]


def test_the_ir_rounds_to_minor_units_unless_the_rate_says(tmp_path: Path) -> None:
    plan_set, problems = load_plan_set([REPO / "tests" / "golden" / "currency-minor-units" / "plans"])
    assert plan_set is not None, problems
    rates = build_ir(plan_set)["rates"]
    assert {rid: r["rounding"]["decimals"] for rid, r in rates.items()} == {"RT_JPY": 0, "RT_KWD": 3, "RT_EUR": 2, "RT_EUR_4": 4}


def test_billed_amounts_finer_than_the_currency_are_refused_with_their_place(tmp_path: Path) -> None:
    problems = _files(tmp_path, {
        "bands.yaml": """\
            kind: time_bands
            id: TB_X
            timezone: UTC
            bands: [{id: ALL, days: all}]
        """,
        "rate.yaml": """\
            kind: rate
            id: RT_X
            currency: JPY
            price: "10.5"
            per: 60
        """,
        "plan.yaml": """\
            kind: tariff_plan
            id: TP_X
            tenant: mno
            segment: retail_postpaid
            currency: JPY
            versions:
              - version: 1
                effective_from: 2026-01-01
                time_bands: TB_X
                monthly_fee: "1000.5"
                bundles: [BN_X]
                discounts: [DP_X]
                rates: [{service: voice, rate: RT_X}]
        """,
        "bundle.yaml": """\
            kind: bundle
            id: BN_X
            allowance: {service: voice, amount: 60min}
            recurrence: monthly
            fee: "500.25"
            currency: JPY
        """,
        "discount.yaml": """\
            kind: discount_plan
            id: DP_X
            type: fixed
            level: period
            currency: JPY
            amount: "0.5"
        """,
    })
    # a per-unit price may be finer than the currency (it is summed, then rounded); what is billed as it is may not
    assert problems == [("bundle.yaml", 5, 6, "value.decimals"), ("discount.yaml", 6, 9, "value.decimals"),
                        ("plan.yaml", 10, 18, "value.decimals")]


def test_alert_thresholds_refuse_yaml_floats_and_texts_use_minor_units(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(textwrap.dedent("""\
        kind: credit_alerts
        thresholds:
          - {id: HALF, percent: 50, actions: [{type: message, channel: sms, text: "used {used} of {limit} {currency}"}]}
          - {id: ODD, percent: "87.5", actions: [{type: message, channel: sms, text: "left {available}"}]}
          - {id: FLOAT, percent: 90.5, actions: [{type: message, channel: sms, text: "x"}]}
    """), encoding="utf-8")
    problems: list[Problem] = []
    load_rules([tmp_path], problems)
    assert [(p.line, p.code) for p in problems] == [(5, "alert.bad-percent")]
    (tmp_path / "alerts.yaml").write_text((tmp_path / "alerts.yaml").read_text().rsplit("  - {id: FLOAT", 1)[0], encoding="utf-8")
    problems = []
    alerts = load_rules([tmp_path], problems).credit_alerts()
    assert problems == []

    def texts(currency: str, limit: int, used: int) -> list[str]:
        return [a.text for a in alerts.evaluate_credit(CreditFact("mno", "1", "2026-03", currency, limit, 0, used))]

    assert texts("JPY", 10_000 * 10**6, 9_000_500_000) == ["used 9000 of 10000 JPY", "left 999"]
    assert texts("KWD", 10 * 10**6, 9_000_500) == ["used 9.000 of 10.000 KWD", "left 0.999"]
    assert texts("EUR", 10 * 10**6, 9_000_500) == ["used 9.00 of 10.00 EUR", "left 0.99"]
