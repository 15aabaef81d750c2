"""Barring decisions on the sample operator and validation of barring tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.eventrules import Barring, CallAttempt, RuleBook

from .conftest import load_text_rules

NIGHT = datetime(2026, 11, 27, 3, 0)
DAY = datetime(2026, 11, 27, 14, 0)


def attempt(**kw: object) -> CallAttempt:
    base: dict[str, object] = dict(msisdn="33612000001", tenant="mno", plan_id="TP_SMART_M", service="voice", at=DAY)
    base.update(kw)
    return CallAttempt(**base)  # type: ignore[arg-type]


CASES = [
    (attempt(destination_group="DST_NATIONAL_MOBILE"), True, None),
    (attempt(destination_group="DST_PREMIUM", plan_id="TP_SMART_S"), False, "BAR_SMART_S_PREMIUM"),
    (attempt(destination_group="DST_PREMIUM", at=NIGHT), False, "BAR_PREMIUM_AT_NIGHT"),
    (attempt(destination_group="DST_PREMIUM"), True, None),
    (attempt(destination_group="DST_EMERGENCY", flags=frozenset({"bar_all_outgoing"})), True, "ALLOW_EMERGENCY"),
    (attempt(destination_group="DST_NATIONAL_FIXED", flags=frozenset({"bar_all_outgoing"})), False, "BAR_STAFF_ALL_OUTGOING"),
    (attempt(destination_group="DST_EU", flags=frozenset({"bar_international"})), False, "BAR_STAFF_INTERNATIONAL"),
    (attempt(destination_group="DST_NATIONAL_FIXED", flags=frozenset({"bar_international"})), True, None),
    (attempt(destination_group="DST_NATIONAL_FIXED", credit_used_micros=50_000_000, credit_limit_micros=50_000_000), False, "BAR_CREDIT_EXHAUSTED"),
    (attempt(destination_group="DST_FREEPHONE", credit_used_micros=60_000_000, credit_limit_micros=50_000_000), True, "ALLOW_FREEPHONE_WHEN_EXHAUSTED"),
    (attempt(destination_group="DST_NATIONAL_FIXED", credit_used_micros=49_999_999, credit_limit_micros=50_000_000), True, None),
    (attempt(tenant="mvno-alpha", plan_id="TP_ALPHA_SIMPLE", destination_group="DST_NORTH_AMERICA"), False, "BAR_ALPHA_SIMPLE_INTERNATIONAL"),
    (attempt(tenant="mvno-alpha", plan_id="TP_ALPHA_SIMPLE", destination_group="DST_ONNET", roaming=True), False, "BAR_ALPHA_SIMPLE_ROAMING"),
    (attempt(tenant="mvno-beta", plan_id="TP_BETA_DATA", destination_group="DST_EU"), False, "BAR_BETA_DATA_VOICE_ABROAD"),
    (attempt(tenant="mvno-beta", plan_id="TP_BETA_DATA", destination_group="DST_EU", service="sms"), True, None),
    (attempt(roaming=True, visited_network="AAMSAT", destination_group="DST_ONNET"), False, "BAR_SATELLITE_ROAMING"),
    (attempt(roaming=True, visited_network="DEUD2", destination_group="DST_ONNET"), True, None),
    (attempt(roaming=True, visited_network="DEUD2", flags=frozenset({"bar_roaming"})), False, "BAR_STAFF_ROAMING"),
]


@pytest.mark.parametrize("call,allowed,rule_id", CASES)
def test_sample_barring(book: RuleBook, backend: str, call: CallAttempt, allowed: bool, rule_id: str | None) -> None:
    decision = book.barring(backend).authorise(call)
    assert (decision.allowed, decision.rule_id) == (allowed, rule_id)
    assert decision.action == ("allow" if allowed else "bar")
    assert decision.reason


def test_no_rules_allows_everything(tmp_path: Path) -> None:
    book, problems = load_text_rules(tmp_path, {"b.yaml": "kind: barring\nrules: []\n"})
    assert problems == []
    decision = Barring(book.barring_table).authorise(attempt(destination_group="DST_PREMIUM"))
    assert decision.allowed and decision.rule_id is None


NEGATIVE = """\
kind: barring
rules:
  - id: BAR_A
    priority: 10
    action: bar
    when: {service: voice}
  - id: BAR_B
    priority: 10
    action: bar
    when: {roaming: true}
  - id: BAR_C
    priority: 5
    action: bar
    when: {service: voice, destination_group: DST_PREMIUM}
  - id: BAR_D
    priority: 1
    action: block
  - id: bar_e
    action: bar
  - id: BAR_F
    priority: 3
    action: allow
    when: {credit_used: {gt: 10, lt: 5}}
  - id: BAR_A
    priority: 2
    action: bar
    when: {service: data, colour: red}
    extra: 1
"""


def test_negative_barring_table(tmp_path: Path) -> None:
    _, problems = load_text_rules(tmp_path, {"neg.yaml": NEGATIVE})
    assert problems == [
        ("neg.yaml", 7, 5, "rule.ambiguous"),  # BAR_B overlaps BAR_A at priority 10
        ("neg.yaml", 11, 5, "rule.unreachable"),  # BAR_C is hidden by BAR_A
        ("neg.yaml", 17, 13, "barring.bad-action"),
        ("neg.yaml", 18, 9, "rule.bad-id"),
        ("neg.yaml", 20, 5, "rule.unreachable"),  # BAR_F can never hold
        ("neg.yaml", 24, 5, "rule.duplicate-id"),
        ("neg.yaml", 28, 5, "schema.unknown-field"),
    ]


def test_disjoint_equal_priorities_are_fine(tmp_path: Path) -> None:
    text = """\
kind: barring
rules:
  - {id: BAR_A, priority: 10, action: bar, when: {plan_id: P1, destination_group: DST_PREMIUM}}
  - {id: BAR_B, priority: 10, action: bar, when: {plan_id: P2}}
  - {id: BAR_C, priority: 10, action: bar, when: {plan_id: P1, destination_group: [DST_EU, DST_INTERNATIONAL]}}
  - {id: BAR_D, priority: 10, action: bar, when: {credit_used: {gte: 100}, plan_id: P3}}
  - {id: BAR_E, priority: 10, action: bar, when: {credit_used: {lt: 100}, plan_id: P3}}
"""
    _, problems = load_text_rules(tmp_path, {"ok.yaml": text})
    assert problems == []


def test_dangling_destination_groups(tmp_path: Path) -> None:
    text = """\
kind: barring
rules:
  - {id: BAR_A, priority: 10, action: bar, when: {destination_group: [DST_PREMIUM, DST_MARS]}}
  - {id: BAR_B, priority: 9, action: bar, when: {not: {destination_group: DST_VENUS}}}
"""
    book, problems = load_text_rules(tmp_path, {"d.yaml": text})
    assert problems == []
    dangling = book.dangling_references({"DST_PREMIUM"})
    assert [(p.line, p.code) for p in dangling] == [(3, "rule.unknown-destination-group"), (4, "rule.unknown-destination-group")]
    assert "DST_MARS" in dangling[0].message and "DST_VENUS" in dangling[1].message
