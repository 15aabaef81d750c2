"""Credit alerts: thresholds of a credit limit and what to do when one is crossed.

Files (``kind: credit_alerts``) list thresholds ``{id, percent, tenant?, when?,
actions}``.  A threshold fires when usage *crosses* it: before the new usage
it was below, after it is at or above.  Usage only grows within a period, so
each threshold fires once per period; ``already_fired`` guards the rare case
of usage dropping (a credit note) and crossing again.  Every crossed threshold
fires (a jump from 40 % to 100 % gives the 50, 80 and 100 % actions).

Percentages become integer basis points and usage is compared as
``floor(used * 10000 / limit)`` -- exact integer arithmetic, no floats.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from engine.conditions import Comparison, Condition, all_of
from engine.money import minor_units
from engine.eventrules.adapter import DEFAULT_BACKEND, RuleEngine
from engine.eventrules.analysis import RuleEntry, check_table
from engine.eventrules.common import check_unique, rule_id, when
from engine.eventrules.model import EventRule, EventRuleSet
from engine.yamlio import Fields, Mark, MarkedList, Problem

ACTION_KINDS = ("message", "bar_service", "notify_mvno")
CHANNELS = ("sms", "email", "webhook")
SERVICES = ("voice", "sms", "mms", "data", "all")
PLACEHOLDERS = ("tenant", "account_id", "period", "percent", "threshold_id", "used", "limit", "available", "currency")
_MICROS = Decimal(1_000_000)
_BP_CAP = 2**60  # usage with no limit left: "far beyond every threshold"


@dataclass(frozen=True)
class CreditFact:
    """Usage of one account against its credit limit in one period.  Money in micro-units."""

    tenant: str
    account_id: str
    period: str  # e.g. "2026-11"
    currency: str
    credit_limit_micros: int
    used_before_micros: int
    used_after_micros: int
    already_fired: frozenset[str] = frozenset()  # threshold ids fired earlier in this period
    # extra fact fields for `when` (e.g. plan_id): a mapping or (name, value) pairs
    attributes: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()

    def fact(self) -> dict[str, Any]:
        fact: dict[str, Any] = dict(self.attributes)
        fact.update(
            tenant=self.tenant,
            account_id=self.account_id,
            period=self.period,
            currency=self.currency,
            credit_limit=self.credit_limit_micros,
            used_before=self.used_before_micros,
            used_after=self.used_after_micros,
            used_bp_before=basis_points(self.used_before_micros, self.credit_limit_micros),
            used_bp_after=basis_points(self.used_after_micros, self.credit_limit_micros),
        )
        return fact


def basis_points(used: int, limit: int) -> int:
    """floor(used / limit * 10000); a zero limit counts any usage as far beyond."""
    if limit <= 0:
        return 0 if used <= 0 else _BP_CAP
    return min(used * 10_000 // limit, _BP_CAP)


@dataclass(frozen=True)
class AlertAction:
    threshold_id: str
    percent: str  # as written, e.g. "80" or "87.5"
    kind: str  # message | bar_service | notify_mvno
    tenant: str
    account_id: str
    channel: str = ""  # sms | email | webhook (message, notify_mvno)
    recipient: str = ""  # rendered; empty: the account's default contact for the channel
    text: str = ""  # rendered message text
    service: str = ""  # bar_service: which service to bar


@dataclass(frozen=True)
class _ActionSpec:
    kind: str
    channel: str = ""
    recipient: str = ""
    template: str = ""
    service: str = ""


@dataclass(frozen=True)
class Threshold:
    id: str
    percent: str
    basis_points: int
    tenant: str | None
    condition: Condition  # the user's extra `when`
    actions: tuple[_ActionSpec, ...]
    mark: Mark
    order: int = 0

    def full_condition(self) -> Condition:
        tenant = Comparison("tenant", "eq", self.tenant) if self.tenant else None
        crossing = all_of(Comparison("used_bp_before", "lt", self.basis_points), Comparison("used_bp_after", "gte", self.basis_points))
        return all_of(*(c for c in (tenant, crossing, self.condition) if c is not None))


def _percent(value: Any, mark: Mark, what: str, problems: list[Problem]) -> tuple[str, int] | None:
    if isinstance(value, float):
        # 87.5 unquoted is a binary float already; write "87.5" (as amounts are written)
        problems.append(Problem.at(mark, "alert.bad-percent", f"{what}: write the percent as text (\"87.5\") or a whole number, "
                                                              f"not a floating point number"))
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidOperation
        dec = Decimal(str(value))
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite() or dec <= 0 or dec > 1000 or (dec * 100) != (dec * 100).to_integral_value(ROUND_DOWN):
        problems.append(Problem.at(mark, "alert.bad-percent", f"{what}: percent must be between 0 and 1000 with at most 2 decimals"))
        return None
    return (str(value), int(dec * 100))


def _template(text: str, mark: Mark, what: str, problems: list[Problem]) -> bool:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        problems.append(Problem.at(mark, "alert.bad-template", f"{what}: {exc}"))
        return False
    bad = [n for n in names if n not in PLACEHOLDERS]
    if bad:
        problems.append(
            Problem.at(mark, "alert.unknown-placeholder", f"{what}: unknown placeholder {{{bad[0]}}} (use {', '.join(PLACEHOLDERS)})")
        )
        return False
    return True


def _action(node: Any, mark: Mark, what: str, problems: list[Problem]) -> _ActionSpec | None:
    f = Fields(node, what, problems, fallback=mark)
    kind = f.required("type", str)
    if kind is not None and kind not in ACTION_KINDS:
        problems.append(Problem.at(f.node.mark_of("type"), "alert.bad-action", f"{what}: type must be one of {', '.join(ACTION_KINDS)}"))
        kind = None
    channel = f.optional("channel", str, default="")
    recipient = f.optional("to", str, default="")
    template = f.optional("text", str, default="")
    service = f.optional("service", str, default="")
    f.done()
    ok = kind is not None
    if kind in ("message", "notify_mvno"):
        channel = channel or ("webhook" if kind == "notify_mvno" else "")
        if channel not in CHANNELS:
            problems.append(Problem.at(f.node.mark_of("channel"), "alert.bad-channel", f"{what}: channel must be one of {', '.join(CHANNELS)}"))
            ok = False
        if kind == "message" and not template:
            problems.append(Problem.at(f.mark, "schema.missing", f"{what}: missing field 'text'"))
            ok = False
        ok = _template(template, f.node.mark_of("text"), what, problems) and _template(recipient, f.node.mark_of("to"), what, problems) and ok
    if kind == "bar_service":
        if service not in SERVICES:
            problems.append(Problem.at(f.node.mark_of("service"), "alert.bad-service", f"{what}: service must be one of {', '.join(SERVICES)}"))
            ok = False
    return _ActionSpec(kind, channel, recipient, template, service) if ok and kind else None


def parse_alert_file(node: Any, problems: list[Problem]) -> list[Threshold]:
    f = Fields(node, "credit_alerts", problems)
    f.optional("kind", str)
    f.optional("description", str)
    default_tenant = f.optional("tenant", str)
    items = f.required("thresholds", list)
    f.done()
    out: list[Threshold] = []
    for i, item in enumerate(items or []):
        mark = items.mark_of(i) if isinstance(items, MarkedList) else f.mark
        tf = Fields(item, f"thresholds[{i}]", problems, fallback=mark)
        ident = rule_id(tf, "id", problems, f"thresholds[{i}]")
        what = f"threshold {ident or i}"
        raw = tf.required("percent", (int, str, float))  # a float is refused with its own message
        pct = _percent(raw, tf.node.mark_of("percent"), what, problems) if raw is not None else None
        tenant = tf.optional("tenant", str, default=default_tenant)
        cond = when(tf, "when", what, problems)
        raw_actions = tf.required("actions", list)
        tf.optional("name", str)
        tf.done()
        actions = []
        ok = True
        for j, a in enumerate(raw_actions or []):
            amark = raw_actions.mark_of(j) if isinstance(raw_actions, MarkedList) else tf.mark
            spec = _action(a, amark, f"{what}.actions[{j}]", problems)
            ok = ok and spec is not None
            if spec:
                actions.append(spec)
        if raw_actions is not None and not raw_actions:
            problems.append(Problem.at(tf.node.mark_of("actions"), "alert.no-actions", f"{what}: list at least one action"))
            ok = False
        if ident and pct and cond is not None and ok:
            out.append(Threshold(ident, pct[0], pct[1], tenant, cond, tuple(actions), tf.mark))
    return out


@dataclass(frozen=True)
class AlertTable:
    thresholds: tuple[Threshold, ...]  # in firing order: percent, then declaration

    def ruleset(self) -> EventRuleSet:
        return EventRuleSet("credit_alerts", "all", tuple(EventRule(t.id, t.full_condition()) for t in self.thresholds))


def build_alert_table(thresholds: list[Threshold], problems: list[Problem]) -> AlertTable:
    check_unique([(t.id, t.mark) for t in thresholds], problems, "threshold")
    seen: dict[tuple[str | None, int, str], Threshold] = {}
    for t in thresholds:
        key = (t.tenant, t.basis_points, repr(t.condition.to_plain()))
        if key in seen:
            problems.append(
                Problem.at(t.mark, "rule.ambiguous", f"threshold {t.id} repeats {seen[key].id} (same tenant, percent and condition)")
            )
        else:
            seen[key] = t
    numbered = [Threshold(t.id, t.percent, t.basis_points, t.tenant, t.condition, t.actions, t.mark, i) for i, t in enumerate(thresholds)]
    check_table([RuleEntry(t.id, 0, t.full_condition(), t.mark, t.order) for t in numbered], problems, first_match=False, what="threshold")
    return AlertTable(tuple(sorted(numbered, key=lambda t: (t.basis_points, t.order))))


def _money(micros: int, currency: str) -> str:
    """An amount in an alert text: the currency's minor units (EUR 12.34, JPY 1234, KWD 12.345), truncated."""
    return str((Decimal(micros) / _MICROS).quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_DOWN))


class CreditAlerts(RuleEngine[Threshold]):
    def __init__(self, table: AlertTable, backend: str = DEFAULT_BACKEND) -> None:
        super().__init__(table.thresholds, table.ruleset(), backend)
        self.table = table

    def evaluate_credit(self, fact: CreditFact) -> list[AlertAction]:
        out: list[AlertAction] = []
        for t in self.matched(fact.fact()):
            if t.id in fact.already_fired:
                continue
            values = {
                "tenant": fact.tenant,
                "account_id": fact.account_id,
                "period": fact.period,
                "percent": t.percent,
                "threshold_id": t.id,
                "used": _money(fact.used_after_micros, fact.currency),
                "limit": _money(fact.credit_limit_micros, fact.currency),
                "available": _money(fact.credit_limit_micros - fact.used_after_micros, fact.currency),
                "currency": fact.currency,
            }
            for spec in t.actions:
                out.append(
                    AlertAction(
                        threshold_id=t.id,
                        percent=t.percent,
                        kind=spec.kind,
                        tenant=fact.tenant,
                        account_id=fact.account_id,
                        channel=spec.channel,
                        recipient=spec.recipient.format(**values),
                        text=spec.template.format(**values),
                        service=spec.service,
                    )
                )
        return out

    def tenants(self) -> Iterable[str]:
        return sorted({t.tenant for t in self.table.thresholds if t.tenant})
