"""Barring: may this subscriber make this call attempt now?

Rule files (``kind: barring``) hold rules ``{id, priority, action: bar|allow,
reason, when}``.  All barring files form one table: the highest priority
matching rule decides; when none matches the call is allowed.  ``allow``
rules carve out exceptions (emergency numbers above every bar).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from engine.conditions import Comparison, Condition
from engine.eventrules.adapter import DEFAULT_BACKEND, RuleEngine
from engine.eventrules.analysis import RuleEntry, check_table, ordered
from engine.eventrules.common import check_unique, priority, rule_id, when
from engine.eventrules.model import EventRule, EventRuleSet
from engine.yamlio import Fields, Mark, MarkedList, Problem

ACTIONS = ("bar", "allow")
NO_RULE_REASON = "no barring rule applies"


@dataclass(frozen=True)
class CallAttempt:
    """What is known when a call, SMS or data session starts.  Money in micro-units."""

    msisdn: str
    tenant: str = ""
    plan_id: str = ""
    service: str = "voice"  # voice | sms | mms | data | supplementary
    destination: str = ""  # dialled number (digits)
    destination_group: str = ""  # e.g. DST_INTERNATIONAL, from the plan's destination index
    roaming: bool = False
    visited_network: str = ""  # TADIG / PLMN code when roaming
    credit_used_micros: int = 0
    credit_limit_micros: int | None = None  # None: no credit limit
    balance_micros: int | None = None  # prepaid balance, when the account has one
    flags: frozenset[str] = frozenset()  # barring flags set by staff, e.g. bar_international
    at: datetime | None = None  # local time of the attempt (the plan's time zone)

    def fact(self) -> dict[str, Any]:
        """The flat fact the rules see (documented in rules/README.md)."""
        fact: dict[str, Any] = {
            "msisdn": self.msisdn,
            "tenant": self.tenant or None,
            "plan_id": self.plan_id or None,
            "service": self.service or None,
            "destination": self.destination or None,
            "destination_group": self.destination_group or None,
            "roaming": self.roaming,
            "visited_network": self.visited_network or None,
            "credit_used": self.credit_used_micros,
            "flags": {name: True for name in self.flags},
        }
        if self.credit_limit_micros is not None:
            fact["credit_limit"] = self.credit_limit_micros
            fact["credit_available"] = self.credit_limit_micros - self.credit_used_micros
            fact["credit_exhausted"] = self.credit_used_micros >= self.credit_limit_micros
        if self.balance_micros is not None:
            fact["balance"] = self.balance_micros
        if self.at is not None:
            fact["hour"] = self.at.hour
            fact["weekday"] = self.at.isoweekday()  # 1 = Monday
        return fact


@dataclass(frozen=True)
class BarringDecision:
    allowed: bool
    action: str  # "allow" or "bar"
    rule_id: str | None  # None: no rule matched (allowed by default)
    reason: str


@dataclass(frozen=True)
class BarringRule:
    id: str
    priority: int
    action: str
    reason: str
    condition: Condition
    mark: Mark
    order: int = 0


@dataclass(frozen=True)
class BarringTable:
    rules: tuple[BarringRule, ...]  # in evaluation order

    def ruleset(self) -> EventRuleSet:
        return EventRuleSet("barring", "first", tuple(EventRule(r.id, r.condition) for r in self.rules))

    def destination_groups(self) -> list[tuple[str, Mark, str]]:
        """(group id, where, rule id) for every destination group a rule names."""
        return self.references("destination_group")

    def references(self, path: str) -> list[tuple[str, Mark, str]]:
        """(value, where, rule id) for every text value a rule compares ``path`` with."""
        found: list[tuple[str, Mark, str]] = []
        for rule in self.rules:
            for value in values_of(rule.condition, path):
                found.append((value, rule.mark, rule.id))
        return found


def values_of(cond: Condition, path: str) -> Iterable[str]:
    if isinstance(cond, Comparison):
        if cond.field == path and cond.op in ("eq", "ne", "in"):
            yield from (v for v in (cond.value if cond.op == "in" else (cond.value,)) if isinstance(v, str))
        return
    for child in getattr(cond, "items", ()) or ((cond.item,) if hasattr(cond, "item") else ()):
        yield from values_of(child, path)


def parse_barring_file(node: Any, problems: list[Problem]) -> list[BarringRule]:
    f = Fields(node, "barring", problems)
    f.optional("kind", str)
    f.optional("description", str)
    items = f.required("rules", list)
    f.done()
    out: list[BarringRule] = []
    for i, item in enumerate(items or []):
        mark = items.mark_of(i) if isinstance(items, MarkedList) else f.mark
        rf = Fields(item, f"rules[{i}]", problems, fallback=mark)
        ident = rule_id(rf, "id", problems, f"rules[{i}]")
        what = f"rule {ident or i}"
        pri = priority(rf, problems)
        action = rf.required("action", str)
        if action is not None and action not in ACTIONS:
            problems.append(Problem.at(rf.node.mark_of("action"), "barring.bad-action", f"{what}: action must be bar or allow"))
            action = None
        reason = rf.optional("reason", str, default="")
        cond = when(rf, "when", what, problems)
        rf.optional("name", str)
        rf.done()
        if ident and action and cond is not None:
            out.append(BarringRule(ident, pri, action, reason or f"{action} by rule {ident}", cond, rf.mark))
    return out


def build_barring_table(rules: list[BarringRule], problems: list[Problem]) -> BarringTable:
    check_unique([(r.id, r.mark) for r in rules], problems, "barring rule")
    numbered = [BarringRule(r.id, r.priority, r.action, r.reason, r.condition, r.mark, i) for i, r in enumerate(rules)]
    entries = [RuleEntry(r.id, r.priority, r.condition, r.mark, r.order) for r in numbered]
    check_table(entries, problems, first_match=True, what="barring rule")
    by_id = {r.id: r for r in numbered}
    return BarringTable(tuple(by_id[e.id] for e in ordered(entries)))


class Barring(RuleEngine[BarringRule]):
    """Compiled barring table behind one backend; ``authorise`` is the entry point."""

    def __init__(self, table: BarringTable, backend: str = DEFAULT_BACKEND) -> None:
        super().__init__(table.rules, table.ruleset(), backend)
        self.table = table

    def authorise(self, attempt: CallAttempt) -> BarringDecision:
        hit = self.matched(attempt.fact())
        if not hit:
            return BarringDecision(True, "allow", None, NO_RULE_REASON)
        rule = hit[0]
        return BarringDecision(rule.action == "allow", rule.action, rule.id, rule.reason)

    def dangling_destination_groups(self, known: Iterable[str]) -> list[Problem]:
        known_set = set(known)
        return [
            Problem.at(mark, "rule.unknown-destination-group", f"barring rule {rid}: destination group {group} is not defined in plans/")
            for group, mark, rid in self.table.destination_groups()
            if group not in known_set
        ]
