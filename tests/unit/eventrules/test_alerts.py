"""Credit alerts: crossing detection, once per period, templates and validation."""

from __future__ import annotations

from pathlib import Path

from engine.eventrules import CreditAlerts, CreditFact, RuleBook
from engine.eventrules.alerts import basis_points

from .conftest import load_text_rules

EUR = 1_000_000


def fact(tenant: str, before: int, after: int, limit: int = 1000 * EUR, fired: frozenset[str] = frozenset(), **attrs: object) -> CreditFact:
    return CreditFact(tenant, "ACC-1", "2026-11", "EUR", limit, before, after, fired, tuple(attrs.items()))


def ids(actions: list) -> list[tuple[str, str]]:
    return [(a.threshold_id, a.kind) for a in actions]


def test_crossing_fires_once(book: RuleBook, backend: str) -> None:
    alerts = book.credit_alerts(backend)
    assert alerts.evaluate_credit(fact("mvno-alpha", 0, 499_999_999)) == []
    crossed = alerts.evaluate_credit(fact("mvno-alpha", 499_999_999, 500 * EUR))
    assert ids(crossed) == [("WS_ALPHA_50", "message")]
    a = crossed[0]
    assert a.channel == "email" and a.recipient == "billing@alpha-mobile.example"
    assert a.text == "mvno-alpha: 50% of a subscriber's credit limit used in 2026-11 (500.00 of 1000.00 EUR)."
    # already above 50 %: usage growing further does not fire it again
    assert alerts.evaluate_credit(fact("mvno-alpha", 500 * EUR, 600 * EUR)) == []


def test_jump_fires_every_crossed_threshold_in_order(book: RuleBook, backend: str) -> None:
    actions = book.credit_alerts(backend).evaluate_credit(fact("mvno-alpha", 100 * EUR, 1200 * EUR))
    assert ids(actions) == [
        ("WS_ALPHA_50", "message"),
        ("WS_ALPHA_80", "message"),
        ("WS_ALPHA_80", "notify_mvno"),
        ("WS_ALPHA_100", "notify_mvno"),
        ("WS_ALPHA_100", "bar_service"),
    ]
    assert actions[-1].service == "all"
    assert actions[1].text.endswith("-200.00 EUR left.")


def test_already_fired_is_not_repeated(book: RuleBook, backend: str) -> None:
    alerts = book.credit_alerts(backend)
    actions = alerts.evaluate_credit(fact("mvno-alpha", 400 * EUR, 850 * EUR, fired=frozenset({"WS_ALPHA_50"})))
    assert [a.threshold_id for a in actions] == ["WS_ALPHA_80", "WS_ALPHA_80"]


def test_tenants_have_their_own_thresholds(book: RuleBook, backend: str) -> None:
    alerts = book.credit_alerts(backend)
    assert ids(alerts.evaluate_credit(fact("mvno-beta", 850 * EUR, 900 * EUR))) == [("WS_BETA_90", "message"), ("WS_BETA_90", "bar_service")]
    assert ids(alerts.evaluate_credit(fact("mno", 700 * EUR, 800 * EUR))) == [("RETAIL_80", "message")]
    assert alerts.evaluate_credit(fact("mvno-gamma", 0, 2000 * EUR)) == []


def test_extra_conditions_use_attributes(book: RuleBook, backend: str) -> None:
    alerts = book.credit_alerts(backend)
    plain = alerts.evaluate_credit(fact("mno", 850 * EUR, 950 * EUR, plan_id="TP_SMART_M"))
    business = alerts.evaluate_credit(fact("mno", 850 * EUR, 950 * EUR, plan_id="TP_BUSINESS_PRO"))
    assert plain == [] and [a.threshold_id for a in business] == ["RETAIL_BUSINESS_90"]


def test_basis_points_are_exact() -> None:
    assert basis_points(799_999_999, 1000 * EUR) == 7999
    assert basis_points(800 * EUR, 1000 * EUR) == 8000
    assert basis_points(1, 3) == 3333
    assert basis_points(0, 0) == 0 and basis_points(1, 0) > 10**9


def test_decimal_percent_and_zero_limit(tmp_path: Path, backend: str) -> None:
    text = """\
kind: credit_alerts
tenant: t1
thresholds:
  - id: T_87_5
    percent: "87.5"
    actions: [{type: notify_mvno, text: "{percent} {threshold_id}"}]
"""
    book, problems = load_text_rules(tmp_path, {"a.yaml": text})
    assert problems == []
    alerts = CreditAlerts(book.alert_table, backend)
    assert alerts.evaluate_credit(fact("t1", 0, 874_999_999)) == []
    (hit,) = alerts.evaluate_credit(fact("t1", 874_999_999, 875 * EUR))
    assert (hit.text, hit.channel) == ("87.5 T_87_5", "webhook")
    assert [a.threshold_id for a in alerts.evaluate_credit(fact("t1", 0, 1, limit=0))] == ["T_87_5"]


NEGATIVE = """\
kind: credit_alerts
thresholds:
  - id: T_A
    percent: 0
    actions: [{type: message, channel: sms, text: hi}]
  - id: T_B
    percent: 50
    actions:
      - {type: message, channel: pigeon, text: "hi {name}"}
      - {type: bar_service, service: fax}
      - {type: launch}
  - id: T_C
    percent: 50
    actions: []
  - id: T_D
    percent: 60
    actions: [{type: message, channel: sms, text: "{used}"}]
  - id: T_E
    percent: 60
    actions: [{type: message, channel: email, text: "again {used}"}]
  - id: T_F
    percent: "12.345"
    actions: [{type: message, channel: sms}]
"""


def test_negative_alerts(tmp_path: Path) -> None:
    _, problems = load_text_rules(tmp_path, {"neg.yaml": NEGATIVE})
    assert problems == [
        ("neg.yaml", 4, 14, "alert.bad-percent"),
        ("neg.yaml", 9, 34, "alert.bad-channel"),
        ("neg.yaml", 9, 48, "alert.unknown-placeholder"),
        ("neg.yaml", 10, 38, "alert.bad-service"),
        ("neg.yaml", 11, 16, "alert.bad-action"),
        ("neg.yaml", 14, 14, "alert.no-actions"),
        ("neg.yaml", 18, 5, "rule.ambiguous"),
        ("neg.yaml", 22, 14, "alert.bad-percent"),
        ("neg.yaml", 23, 15, "schema.missing"),
    ]
