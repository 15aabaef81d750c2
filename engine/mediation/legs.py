"""Calls billed once: when a switch logs several legs of one call, only the billable leg becomes a CDR.

Two ways to tell legs apart, declared in a layout's ``legs:`` section:

* a condition on a column that holds for the billable legs only (stateless)::

      legs:
        billable: {column: channel, not_matches: "^Local/"}   # Asterisk: a Local channel half is not a caller

* leg pairs, when the originating leg names the leg it bridged to (FreeSWITCH's
  ``${bleg_uuid}`` with ``legs="ab"``)::

      legs:
        pair: {leg: uuid, other_leg: bleg_uuid}
        within: 1000           # records: both legs of a call are written this close together

  A record that another record names is that call's other (B) leg; the record that
  names it is the billable one.  A record nobody names within ``within`` records is a
  call of one leg and billable.  Two records that name each other leave the call with
  no billable leg: both are rejected (``legs.no-billable-leg``), never billed twice.

A non-billable leg is counted under its own heading of the reconciliation summary
(``non_billable_legs``), not as filtered and not as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engine.mediation.filters import FILTERS, Filter, Negated
from engine.mediation.outcome import NON_BILLABLE_LEG
from engine.mediation.ports import PendingRecord
from engine.mediation.rows import CdrRow
from engine.yamlio import Fields, Mark, Problem

NO_BILLABLE_LEG = "legs.no-billable-leg"
DEFAULT_WITHIN = 1000
Column = str | int


@dataclass(frozen=True)
class LegPairs:
    leg: Column          # this leg's id
    other_leg: Column    # the id of the leg it bridged to, empty when none
    within: int          # records


@dataclass(frozen=True)
class LegRules:
    billable: Filter | None     # drops the non-billable legs (under NON_BILLABLE_LEG)
    pairs: LegPairs | None


def parse_legs(node: Any, mark: Mark, resolve: Callable[[Any, Mark, str], Column | None], problems: list[Problem]) -> LegRules | None:
    if node is None:
        return None
    f = Fields(node, "legs", problems, mark)
    billable_node = f.optional("billable", dict)
    pair_node = f.optional("pair", dict)
    within = f.optional("within", int, DEFAULT_WITHIN)
    f.done()
    if (billable_node is None) == (pair_node is None):
        problems.append(Problem.at(f.mark, "layout.legs-kind", "legs: give either billable (a column condition) or pair (leg ids)"))
        return None
    if billable_node is not None:
        return LegRules(_billable(billable_node, resolve, problems), None)
    p = Fields(pair_node, "legs.pair", problems, f.node.mark_of("pair"))
    leg = p.required("leg", (str, int))
    other = p.required("other_leg", (str, int))
    p.done()
    if not 1 <= within <= 1_000_000:
        problems.append(Problem.at(f.node.mark_of("within"), "layout.bad-limit", "legs.within must be 1..1000000 records"))
    if leg is None or other is None:
        return None
    if resolve(leg, p.node.mark_of("leg"), "legs.pair.leg") is None or resolve(other, p.node.mark_of("other_leg"), "legs.pair.other_leg") is None:
        return None
    return LegRules(None, LegPairs(leg, other, within))


def _billable(node: Any, resolve: Callable[[Any, Mark, str], Column | None], problems: list[Problem]) -> Filter | None:
    b = Fields(node, "legs.billable", problems)
    column = b.required("column", (str, int))
    operands = {k: b.optional(k, (str, int, list)) for k in FILTERS if k != "below"}
    b.done()
    given = [k for k, v in operands.items() if v is not None]
    if len(given) != 1:
        problems.append(Problem.at(b.mark, "layout.filter-kind", f"legs.billable: give exactly one of {', '.join(operands)}"))
        return None
    if column is None or resolve(column, b.node.mark_of("column"), "legs.billable") is None:
        return None
    kind = given[0]
    message = FILTERS[kind].check_operand(operands[kind])
    if message is not None:
        problems.append(Problem.at(b.node.mark_of(kind), "layout.bad-filter", f"legs.billable: {message}"))
        return None
    keep = FILTERS[kind](NON_BILLABLE_LEG, column, True, operands[kind], b.mark)   # "drops" exactly the billable legs
    return Negated(NON_BILLABLE_LEG, keep)


@dataclass
class _Held:
    record: PendingRecord
    row: CdrRow
    leg: str
    other: str


@dataclass(frozen=True)
class LegOutcome:
    """What became of a held record: ``cdr`` (billable), ``leg`` (the other leg) or ``ambiguous`` (rejected)."""

    kind: str
    record: PendingRecord
    row: CdrRow
    reason: str = ""


class LegPairer:
    """Holds records until their call's other leg turns up (or ``within`` records pass)."""

    def __init__(self, within: int) -> None:
        self.within = within
        self.held: dict[int, _Held] = {}        # record number -> record, in file order
        self.by_leg: dict[str, int] = {}
        self.by_other: dict[str, int] = {}

    def add(self, leg: str, other: str, row: CdrRow, record: PendingRecord) -> list[LegOutcome]:
        out = self.expire(record.record_no)
        partner_no = self.by_leg.get(other) if other else None
        if partner_no is not None:              # this record names a held one: it is the billable leg
            out += self._pair(_Held(record, row, leg, other), self._take(partner_no))
            return out
        partner_no = self.by_other.get(leg) if leg else None
        if partner_no is not None:              # a held record names this one: it is that call's other leg
            out += self._pair(self._take(partner_no), _Held(record, row, leg, other))
            return out
        self.held[record.record_no] = _Held(record, row, leg, other)
        if leg:
            self.by_leg[leg] = record.record_no
        if other:
            self.by_other[other] = record.record_no
        return out

    def expire(self, record_no: int) -> list[LegOutcome]:
        """Held records more than ``within`` records back: calls of one leg, billable."""
        out = []
        while self.held:
            first = next(iter(self.held))
            if record_no - first <= self.within:
                break
            held = self._take(first)
            out.append(LegOutcome("cdr", held.record, held.row))
        return out

    def drain(self) -> list[LegOutcome]:
        """End of the file: every held record is a call of one leg."""
        out = [LegOutcome("cdr", h.record, h.row) for h in self.held.values()]
        self.held.clear()
        self.by_leg.clear()
        self.by_other.clear()
        return out

    def pending(self) -> tuple[PendingRecord, ...]:
        return tuple(h.record for h in self.held.values())

    def _take(self, record_no: int) -> _Held:
        held = self.held.pop(record_no)
        if held.leg and self.by_leg.get(held.leg) == record_no:
            del self.by_leg[held.leg]
        if held.other and self.by_other.get(held.other) == record_no:
            del self.by_other[held.other]
        return held

    @staticmethod
    def _pair(naming: _Held, named: _Held) -> list[LegOutcome]:
        if named.other and named.other == naming.leg:
            reason = (f"legs {naming.leg[:40]!r} and {named.leg[:40]!r} name each other as the other leg: "
                      "neither can be told to be the billable one")
            first, second = sorted((naming, named), key=lambda h: h.record.record_no)
            return [LegOutcome("ambiguous", first.record, first.row, reason), LegOutcome("ambiguous", second.record, second.row, reason)]
        return [LegOutcome("cdr", naming.record, naming.row), LegOutcome("leg", named.record, named.row)]
