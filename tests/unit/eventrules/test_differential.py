"""Both backends, same events, identical decisions (ARCHITECTURE.md: one language, two backends)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.conditions import AllOf, AnyOf, Comparison, Condition, Not, has_negated_matches
from engine.eventrules import CallAttempt, CreditFact, RuleBook, decide_recharge_lockout
from engine.eventrules.adapter import make_backend
from engine.eventrules.model import EventRule, EventRuleSet

from .conftest import load_sample

BOOK: RuleBook = load_sample()
BARRING = {b: BOOK.barring(b) for b in ("compiled", "durable_rules")}
ALERTS = {b: BOOK.credit_alerts(b) for b in ("compiled", "durable_rules")}
LIFECYCLE = {b: BOOK.lifecycle(b) for b in ("compiled", "durable_rules")}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GROUPS = ["DST_INTERNATIONAL", "DST_PREMIUM", "DST_EU", "DST_EMERGENCY", "DST_FREEPHONE", "DST_ONNET", "DST_NATIONAL_FIXED", "DST_SATELLITE", ""]
PLANS = ["TP_SMART_S", "TP_SMART_M", "TP_ALPHA_SIMPLE", "TP_BETA_DATA", "TP_BUSINESS_PRO", ""]
TENANTS = ["mno", "mvno-alpha", "mvno-beta", "other"]
FLAGS = ["bar_all_outgoing", "bar_international", "bar_premium", "bar_roaming", "vip"]
MONEY = st.integers(min_value=0, max_value=2_000) .map(lambda x: x * 1_000_000) | st.integers(min_value=0, max_value=2 * 10**9)

attempts = st.builds(
    CallAttempt,
    msisdn=st.sampled_from(["33612000001", "33614000002"]),
    tenant=st.sampled_from(TENANTS),
    plan_id=st.sampled_from(PLANS),
    service=st.sampled_from(["voice", "sms", "data", "mms"]),
    destination_group=st.sampled_from(GROUPS),
    roaming=st.booleans(),
    visited_network=st.sampled_from(["", "DEUD2", "AAMSAT", "XSA1", "GBRVF"]),
    credit_used_micros=MONEY,
    credit_limit_micros=st.none() | MONEY,
    balance_micros=st.none() | MONEY,
    flags=st.frozensets(st.sampled_from(FLAGS), max_size=3),
    at=st.none() | st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
)

HAND_MADE_ATTEMPTS = [
    CallAttempt("1", tenant="mno", plan_id="TP_SMART_S", destination_group="DST_PREMIUM", at=datetime(2026, 1, 1, 2)),
    CallAttempt("1", tenant="mno", destination_group="DST_EMERGENCY", flags=frozenset(FLAGS), credit_used_micros=9, credit_limit_micros=1),
    CallAttempt("1", tenant="mvno-alpha", plan_id="TP_ALPHA_SIMPLE", roaming=True, visited_network="AAMSAT"),
    CallAttempt("1", credit_used_micros=5, credit_limit_micros=5, destination_group="DST_FREEPHONE"),
    CallAttempt("1"),
]


@SETTINGS
@given(st.lists(attempts, min_size=1, max_size=5))
def test_barring_backends_agree(batch: list[CallAttempt]) -> None:
    for attempt in batch + HAND_MADE_ATTEMPTS:
        assert BARRING["compiled"].authorise(attempt) == BARRING["durable_rules"].authorise(attempt), attempt


credit_facts = st.builds(
    CreditFact,
    tenant=st.sampled_from(TENANTS),
    account_id=st.just("ACC"),
    period=st.just("2026-11"),
    currency=st.just("EUR"),
    credit_limit_micros=st.sampled_from([0, 1, 1000 * 10**6, 777_777_777]),
    used_before_micros=MONEY,
    used_after_micros=MONEY,
    already_fired=st.frozensets(st.sampled_from(["WS_ALPHA_50", "WS_BETA_90", "RETAIL_80"]), max_size=2),
    attributes=st.sampled_from([(), (("plan_id", "TP_BUSINESS_PRO"),), (("plan_id", "TP_SMART_M"),)]),
)


@SETTINGS
@given(st.lists(credit_facts, min_size=1, max_size=5))
def test_alert_backends_agree(batch: list[CreditFact]) -> None:
    for fact in batch:
        assert ALERTS["compiled"].evaluate_credit(fact) == ALERTS["durable_rules"].evaluate_credit(fact), fact


VOUCHER_STATES = ["generated", "active", "reserved", "used", "pending", "blocked", "expired", "damaged", "stolen", "purged", "bogus"]
EVENTS = ["activate", "redeem", "reserve", "commit", "release", "reservation_timeout", "block", "unblock", "expire",
          "mark_damaged", "mark_stolen", "recover", "amend", "purge", "exhaust", "fly"]
lifecycle_facts = st.fixed_dictionaries(
    {},
    optional={
        "expired": st.booleans() | st.just("no"),
        "batch_state": st.sampled_from(["active", "blocked", "generated"]),
        "remaining": st.integers(-1, 3),
        "privileges": st.lists(st.sampled_from(["voucher.recover", "voucher.purge", "other"]), max_size=2),
    },
)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["voucher", "voucher_batch"]), st.sampled_from(VOUCHER_STATES), st.sampled_from(EVENTS), lifecycle_facts), min_size=1, max_size=8))
def test_lifecycle_backends_agree(moves: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    for entity, state, event, facts in moves:
        assert LIFECYCLE["compiled"].decide(entity, state, event, facts) == LIFECYCLE["durable_rules"].decide(entity, state, event, facts)


@SETTINGS
@given(
    st.integers(0, 6),
    st.none() | st.integers(-48, 48).map(lambda h: datetime(2026, 1, 1) + timedelta(hours=h)),
    st.sampled_from(["check", "failure", "success", "staff_clear", "staff_bar"]),
)
def test_lockout_backends_agree(count: int, until: datetime | None, outcome: str) -> None:
    now = datetime(2026, 1, 1)
    assert decide_recharge_lockout(count, until, now, outcome, backend="compiled") == decide_recharge_lockout(
        count, until, now, outcome, backend="durable_rules"
    )


# --- random rule tables: first-match order and fire-all sets agree --------------------------

FIELDS = ["a", "b", "c"]
leaf = st.one_of(
    st.builds(Comparison, st.sampled_from(FIELDS), st.sampled_from(["lt", "gte", "eq", "ne"]), st.integers(-2, 2)),
    st.builds(Comparison, st.sampled_from(FIELDS), st.just("in"), st.lists(st.integers(-2, 2), min_size=1, max_size=3, unique=True).map(tuple)),
    st.builds(Comparison, st.sampled_from(FIELDS), st.just("exists"), st.booleans()),
    st.builds(Comparison, st.sampled_from(FIELDS), st.just("eq"), st.sampled_from(["x", True])),
)
conds: st.SearchStrategy[Condition] = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=4,
).filter(lambda c: not has_negated_matches(c))
facts = st.dictionaries(st.sampled_from(FIELDS), st.integers(-3, 3) | st.sampled_from(["x", True, None]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conds, min_size=1, max_size=5), st.sampled_from(["first", "all"]), st.lists(facts, min_size=1, max_size=6))
def test_random_rule_tables_agree(conditions: list[Condition], mode: str, fact_list: list[dict[str, Any]]) -> None:
    ruleset = EventRuleSet("random", mode, tuple(EventRule(f"R{i}", c) for i, c in enumerate(conditions)))  # type: ignore[arg-type]
    py, dr = make_backend(ruleset, "compiled"), make_backend(ruleset, "durable_rules")
    for fact in fact_list:
        assert py.matches(fact) == dr.matches(fact), (ruleset.to_plain(), fact)
