"""Static checks on ordered rule tables: ambiguous, unreachable and impossible rules.

Exact overlap of arbitrary conditions is undecidable in general, so this
works on what rule tables actually use: a conjunction of field tests
(``eq``/``in`` value sets, integer ranges, ``exists``).  Anything else
(``any``, ``not``, ``ne``, ``matches``) is treated conservatively: two rules
are disjoint only when a field proves it, and rule A hides rule B only when
every test of A is implied by B (an opaque test must appear in B verbatim).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from engine.conditions import ALWAYS, AllOf, Comparison, Condition, Not, family
from engine.yamlio import Mark, Problem


@dataclass
class _FieldBox:
    values: set[tuple[str | None, Any]] | None = None  # allowed (family, value); None = any
    lo: int | None = None
    hi: int | None = None
    present: bool | None = None
    opaque: list[Condition] = field(default_factory=list)

    def ranged(self) -> bool:
        return self.lo is not None or self.hi is not None

    def empty(self) -> bool:
        if self.present is False and (self.values is not None or self.ranged()):
            return True
        if self.lo is not None and self.hi is not None and self.lo > self.hi:
            return True
        if self.values is not None:
            return not any(self._in_range(fv) for fv in self.values)
        return False

    def _in_range(self, fv: tuple[str | None, Any]) -> bool:
        if not self.ranged():
            return True
        fam, v = fv
        return fam == "num" and (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)

    def admits_present(self) -> bool:
        return self.values is not None or self.ranged() or self.present is True


def _conjuncts(cond: Condition) -> list[Condition]:
    if cond == ALWAYS:
        return []
    if isinstance(cond, AllOf):
        out: list[Condition] = []
        for c in cond.items:
            out.extend(_conjuncts(c))
        return out
    if isinstance(cond, Not) and isinstance(cond.item, Comparison) and cond.item.op == "exists":
        return [Comparison(cond.item.field, "exists", not cond.item.value)]
    if isinstance(cond, Not) and isinstance(cond.item, Not):
        return _conjuncts(cond.item.item)
    return [cond]


def _boxes(conds: Sequence[Condition]) -> tuple[dict[str, _FieldBox], list[Condition]]:
    boxes: dict[str, _FieldBox] = {}
    opaque: list[Condition] = []
    for whole in conds:
        for c in _conjuncts(whole):
            if not isinstance(c, Comparison) or c.op in ("ne", "matches"):
                opaque.append(c)
                continue
            box = boxes.setdefault(c.field, _FieldBox())
            if c.op in ("eq", "in"):
                vals = {(family(v), v) for v in (c.value if c.op == "in" else (c.value,))}
                box.values = vals if box.values is None else box.values & vals
            elif c.op == "exists":
                box.present = c.value if box.present in (None, c.value) else None
                if box.present is None:  # exists true and exists false together
                    box.values = set()
            else:
                lo, hi = {"lt": (None, c.value - 1), "lte": (None, c.value), "gt": (c.value + 1, None), "gte": (c.value, None)}[c.op]
                if lo is not None:
                    box.lo = lo if box.lo is None else max(box.lo, lo)
                if hi is not None:
                    box.hi = hi if box.hi is None else min(box.hi, hi)
    return boxes, opaque


def impossible(cond: Condition) -> bool:
    """True when no fact can satisfy ``cond`` (provably, on its conjunctions)."""
    boxes, _ = _boxes([cond])
    return any(b.empty() for b in boxes.values())


def disjoint(a: Condition, b: Condition) -> bool:
    """True when no fact satisfies both (provably)."""
    return impossible(AllOf((a, b)))


def hides(a: Condition, b: Condition) -> bool:
    """True when every fact matching ``b`` also matches ``a`` (so a first-placed ``a`` hides ``b``)."""
    b_boxes, b_opaque = _boxes([b])
    for test in _conjuncts(a):
        if isinstance(test, Comparison) and test.op not in ("ne", "matches"):
            box = b_boxes.get(test.field)
            if box is None or not _implies(box, test):
                return False
        elif test not in b_opaque:
            return False
    return True


def _implies(box: _FieldBox, test: Comparison) -> bool:
    if test.op == "exists":
        return box.admits_present() if test.value else box.present is False
    if test.op in ("eq", "in"):
        allowed = {(family(v), v) for v in (test.value if test.op == "in" else (test.value,))}
        return box.values is not None and all(fv in allowed for fv in box.values if box._in_range(fv))
    # order tests: every admitted number satisfies the bound
    if box.values is not None:
        return all(fv[0] == "num" and _cmp(test, fv[1]) for fv in box.values if box._in_range(fv))
    if test.op in ("gt", "gte"):
        need = test.value + 1 if test.op == "gt" else test.value
        return box.lo is not None and box.lo >= need
    need = test.value - 1 if test.op == "lt" else test.value
    return box.hi is not None and box.hi <= need


def _cmp(test: Comparison, v: int) -> bool:
    w = test.value
    return {"lt": v < w, "lte": v <= w, "gt": v > w, "gte": v >= w}[test.op]


@dataclass(frozen=True)
class RuleEntry:
    """One rule as the checker sees it; ``order`` is its declaration order (ties keep it)."""

    id: str
    priority: int
    condition: Condition
    mark: Mark
    order: int = 0


def ordered(entries: Sequence[RuleEntry]) -> list[RuleEntry]:
    """Evaluation order: higher priority first, then declaration order."""
    return sorted(entries, key=lambda e: (-e.priority, e.order))


def check_table(entries: Sequence[RuleEntry], problems: list[Problem], first_match: bool = True, what: str = "rule") -> None:
    """Report impossible rules; for first-match tables also ambiguous and hidden ones."""
    rules = ordered(entries)
    for i, rule in enumerate(rules):
        if impossible(rule.condition):
            problems.append(Problem.at(rule.mark, "rule.unreachable", f"{what} {rule.id}: its condition can never hold"))
            continue
        if not first_match:
            continue
        for earlier in rules[:i]:
            if earlier.priority == rule.priority and not disjoint(earlier.condition, rule.condition):
                problems.append(
                    Problem.at(
                        rule.mark,
                        "rule.ambiguous",
                        f"{what} {rule.id} overlaps {earlier.id} with the same priority {rule.priority}: "
                        "give one a higher priority or make their conditions exclusive",
                    )
                )
                break
            if not impossible(earlier.condition) and hides(earlier.condition, rule.condition):
                problems.append(
                    Problem.at(
                        rule.mark,
                        "rule.unreachable",
                        f"{what} {rule.id} can never apply: {earlier.id} (priority {earlier.priority}) matches every case it does",
                    )
                )
                break
