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

from collections import Counter
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from engine.cancellation import checkpoint
from engine.cdr import COLUMNS, MediatedCdr, format_time, parse_time
from engine.gcpause import collector_paused
from engine.money import format_amount
from engine.rating.compiled import CompiledPlans
from engine.rating.evaluator import RATED, REJECTED, Evaluator, Row, row_of
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.usage import cycle_of
from engine.yamlio import Problem

PlanFor = Callable[[Sequence[Any]], str]
CHUNK = 20_000
_A, _TENANT, _ATTRS, _SERVICE, _START = (COLUMNS.index(c) for c in ("a_number", "tenant", "attributes", "service", "start_time"))
_SERVICE_OF = itemgetter(_SERVICE)
_STATUS_OF, _CHARGE_OF = itemgetter(0), itemgetter(1)   # of an evaluator Row


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
        plans = list(map(assign, chunk))
        # one plan for the whole chunk (the common case): the batch loop then looks the plan up once
        plan_arg: str | list[str] = plans[0] if plans.count(plans[0]) == len(plans) else plans
        active = a_ev.rate_rows(chunk, plan_arg, a_wallets.of_rows(chunk, plans))
        candidate = c_ev.rate_rows(chunk, plan_arg, c_wallets.of_rows(chunk, plans))
        _add_up(chunk, plan_arg, active, candidate, lines, report)


def _add_up(chunk: Sequence[Sequence[Any]], plans: str | list[str], active: list[Row], candidate: list[Row],
            lines: dict[tuple[str, str], WhatIfLine], report: WhatIfReport) -> None:
    """Add a chunk's results to the lines by (plan, service): counts by status over the whole chunk at once, charges
    summed per line (a row not rated carries a charge of 0, so it adds nothing); a rejected CDR is in no line.
    ``plans``: the one plan of every row, or each row's."""
    services = list(map(str, map(_SERVICE_OF, chunk)))
    # by service alone when the chunk has one plan (cheaper to hash and compare), else by (plan, service)
    keys: list[Any] = services if isinstance(plans, str) else list(zip(plans, services))
    line_key: Callable[[Any], tuple[str, str]] = (lambda k: (plans, k)) if isinstance(plans, str) else (lambda k: k)
    a_status, c_status = list(map(_STATUS_OF, active)), list(map(_STATUS_OF, candidate))
    for (k, a, c), n in Counter(zip(keys, a_status, c_status)).items():
        key = line_key(k)
        if a == REJECTED:
            report.rejected += n
            continue
        line = lines.get(key)
        if line is None:
            line = lines[key] = WhatIfLine(*key)
        line.cdrs += n
        if a != RATED:
            line.active_unrated += n
        if c != RATED:
            line.candidate_unrated += n
    a_charges, c_charges = list(map(_CHARGE_OF, active)), list(map(_CHARGE_OF, candidate))
    distinct = set(keys)
    for k in distinct:
        line = lines.get(line_key(k))
        if line is None:
            continue   # only rejected CDRs
        mine = None if len(distinct) == 1 else list(map(k.__eq__, keys))
        line.active_micros += sum(a_charges if mine is None else compress(a_charges, mine))
        line.candidate_micros += sum(c_charges if mine is None else compress(c_charges, mine))
    # a line's currency: that of the first CDR of it either side priced in a plan version
    lacking = {k for k in distinct if line_key(k) in lines and not lines[line_key(k)].currency}
    if lacking:
        for k, a, c in zip(keys, active, candidate):
            if k in lacking and a[0] != REJECTED:
                currency = (a[4].currency if a[4] is not None else "") or (c[4].currency if c[4] is not None else "")
                if currency:
                    lines[line_key(k)].currency = currency
                    lacking.discard(k)
                    if not lacking:
                        break


def what_if_paths(cdrs: Iterable[Any], candidate_paths: Iterable[str], active: CompiledPlans,
                  plan_for: PlanFor | Mapping[str, str] | None = None) -> WhatIfReport:
    """Like :func:`what_if` from candidate plan files: an invalid candidate returns its validation errors, unrated."""
    from engine.plans import compile_plan_set, load_plan_set

    plan_set, problems = load_plan_set(candidate_paths)
    if plan_set is None:
        return WhatIfReport(problems=problems)
    return what_if(cdrs, compile_plan_set(plan_set), active, plan_for)
