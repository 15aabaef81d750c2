"""What-if: the same CDRs rated under a candidate and the active plan set; revenue difference per plan and service.

Both sides rate through the one evaluator's batch loop (engine.rating.evaluator),
in chunks, with bundles: on each side every subscriber starts each bill cycle
(in its plan's time zone) with its plan's monthly bundles in full, and spends
them in CDR order, so a candidate that changes an allowance shows its effect.
It is a tariff comparison, not a bill: the counters the store keeps are neither
read nor touched.  The CDRs may be rows of the normalised layout (a CDR file,
the CDR store) or MediatedCdr objects (sent over gRPC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from engine.cancellation import checkpoint
from engine.cdr import COLUMNS, MediatedCdr, format_time, parse_time
from engine.gcpause import collector_paused
from engine.money import format_amount
from engine.rating.compiled import CompiledPlans
from engine.rating.evaluator import RATED, REJECTED, Evaluator, row_of
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.usage import cycle_of
from engine.yamlio import Problem

PlanFor = Callable[[Sequence[Any]], str]
CHUNK = 20_000
_A, _TENANT, _ATTRS, _SERVICE, _START = (COLUMNS.index(c) for c in ("a_number", "tenant", "attributes", "service", "start_time"))


@dataclass
class WhatIfLine:
    plan_id: str
    service: str
    currency: str = ""
    cdrs: int = 0
    active_micros: int = 0
    candidate_micros: int = 0
    active_unrated: int = 0
    candidate_unrated: int = 0

    @property
    def difference_micros(self) -> int:
        return self.candidate_micros - self.active_micros

    def as_dict(self) -> dict[str, object]:
        c = self.currency
        return {
            "plan": self.plan_id, "service": self.service, "currency": c, "cdrs": self.cdrs,
            "active": format_amount(self.active_micros, c), "candidate": format_amount(self.candidate_micros, c),
            "difference": format_amount(self.difference_micros, c),
            "active_unrated": self.active_unrated, "candidate_unrated": self.candidate_unrated,
        }


@dataclass
class WhatIfReport:
    lines: list[WhatIfLine] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)   # candidate validation errors: nothing was rated
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def difference_micros(self) -> int:
        """The sum of every line's difference (meaningful when the lines share one currency)."""
        return sum(line.difference_micros for line in self.lines)

    def differences(self) -> dict[str, int]:
        """Revenue difference per currency (lines that nothing rated have no currency and no difference)."""
        out: dict[str, int] = {}
        for line in self.lines:
            if line.currency:
                out[line.currency] = out.get(line.currency, 0) + line.difference_micros
        return out


def plan_attribute(attributes: str) -> str:
    """The ``plan`` attribute of a row's attribute text (``k=v;k=v``), or ""."""
    if "plan=" not in attributes:
        return ""
    for kv in attributes.split(";"):
        if kv.startswith("plan="):
            return kv[5:]
    return ""


def default_plan_for(assignments: Mapping[str, str] | None = None, default: str = "") -> PlanFor:
    """Plan of a row by its attribute ``plan``, else by a_number, else by tenant, else ``default``."""
    table = dict(assignments or {})

    def plan_for(row: Sequence[Any]) -> str:
        return plan_attribute(row[_ATTRS] or "") or table.get(row[_A]) or table.get(row[_TENANT]) or default

    return plan_for


def _rows(cdrs: Iterable[Any]) -> Iterator[Sequence[Any]]:
    for c in cdrs:
        yield row_of(c) if isinstance(c, MediatedCdr) else c


def what_if(cdrs: Iterable[Any], candidate: CompiledPlans, active: CompiledPlans,
            plan_for: PlanFor | Mapping[str, str] | None = None, limits: CdrLimits = DEFAULT_LIMITS) -> WhatIfReport:
    """Rate every CDR (row or MediatedCdr) with both plan sets and sum the charges per plan and service."""
    assign = plan_for if callable(plan_for) else default_plan_for(plan_for)
    a_ev, c_ev = Evaluator(active, limits), Evaluator(candidate, limits)
    lines: dict[tuple[str, str], WhatIfLine] = {}
    report = WhatIfReport()
    rows = _rows(cdrs)
    with collector_paused():   # reading and rating build many small acyclic objects (see engine.gcpause)
        _compare(rows, assign, a_ev, c_ev, lines, report)
    report.lines = [lines[k] for k in sorted(lines)]
    return report


class Wallets:
    """One side's bundle counters: each subscriber's plan's monthly bundles in full at the start of each bill cycle
    (anchored on the 1st, in the plan's time zone, as rating with counters counts them)."""

    def __init__(self, compiled: CompiledPlans) -> None:
        self.compiled = compiled
        self._wallets: dict[tuple[str, str, str], dict[str, int]] = {}
        self._cycles: dict[tuple[str, str], tuple[str, tuple[tuple[str, int], ...]] | None] = {}

    def of_rows(self, chunk: Sequence[Sequence[Any]], plans: Sequence[str]) -> list[dict[str, int] | None]:
        """The wallet of every row (None: no bundles), consumed in place as the rows are rated in order."""
        out: list[dict[str, int] | None] = []
        cycles, wallets = self._cycles, self._wallets
        for row, plan_id in zip(chunk, plans):
            start = row[_START]
            minute = (start if isinstance(start, str) else format_time(start) if start is not None else "")[:16]
            found = cycles.get((plan_id, minute), self)
            if found is self:
                found = cycles[(plan_id, minute)] = self._cycle(plan_id, minute)
            if found is None:
                out.append(None)
                continue
            cycle, bundles = found   # type: ignore[misc]
            key = (str(row[_A]), plan_id, cycle)
            wallet = wallets.get(key)
            if wallet is None:
                wallet = wallets[key] = dict(bundles)
            out.append(wallet)
        if len(cycles) > 100_000:
            cycles.clear()
        return out

    def _cycle(self, plan_id: str, minute: str) -> tuple[str, tuple[tuple[str, int], ...]] | None:
        plan = self.compiled.plan(plan_id)
        if plan is None:
            return None
        try:
            epoch = int(parse_time(minute + ":00Z").timestamp())
        except ValueError:
            return None   # the evaluator rejects the row and says why
        v = plan.version_at(epoch)
        if v is None:
            return None
        bundles = tuple((bid, b.allowance) for bid in v.bundles
                        if (b := self.compiled.bundles.get(bid)) is not None and b.recurrence == "monthly")
        return (cycle_of(v.clock.local_day(epoch)), bundles) if bundles else None


def _compare(rows: Iterator[Sequence[Any]], assign: PlanFor, a_ev: Evaluator, c_ev: Evaluator,
             lines: dict[tuple[str, str], WhatIfLine], report: WhatIfReport) -> None:
    a_wallets, c_wallets = Wallets(a_ev.compiled), Wallets(c_ev.compiled)
    while True:
        chunk = list(islice(rows, CHUNK))
        if not chunk:
            break
        checkpoint()   # the caller may have gone away: a comparison nobody reads is not finished
        plans = [assign(r) for r in chunk]
        active = a_ev.rate_rows(chunk, plans, a_wallets.of_rows(chunk, plans))
        candidate = c_ev.rate_rows(chunk, plans, c_wallets.of_rows(chunk, plans))
        for row, plan_id, a, c in zip(chunk, plans, active, candidate):
            if a[0] == REJECTED:
                report.rejected += 1
                continue
            key = (plan_id, str(row[_SERVICE]))
            line = lines.get(key)
            if line is None:
                line = lines[key] = WhatIfLine(*key)
            line.cdrs += 1
            if not line.currency:
                line.currency = (a[4].currency if a[4] is not None else "") or (c[4].currency if c[4] is not None else "")
            if a[0] == RATED:
                line.active_micros += a[1]
            else:
                line.active_unrated += 1
            if c[0] == RATED:
                line.candidate_micros += c[1]
            else:
                line.candidate_unrated += 1


def what_if_paths(cdrs: Iterable[Any], candidate_paths: Iterable[str], active: CompiledPlans,
                  plan_for: PlanFor | Mapping[str, str] | None = None) -> WhatIfReport:
    """Like :func:`what_if` from candidate plan files: an invalid candidate returns its validation errors, unrated."""
    from engine.plans import compile_plan_set, load_plan_set

    plan_set, problems = load_plan_set(candidate_paths)
    if plan_set is None:
        return WhatIfReport(problems=problems)
    return what_if(cdrs, compile_plan_set(plan_set), active, plan_for)
