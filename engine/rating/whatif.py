"""What-if: the same CDRs rated under a candidate and the active plan set; revenue difference per plan and service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from engine.cancellation import checkpoint
from engine.cdr import MediatedCdr
from engine.money import format_amount
from engine.rating.compiled import CompiledPlans
from engine.rating.rater import Rater
from engine.rating.result import RatingStatus
from engine.yamlio import Problem

PlanFor = Callable[[MediatedCdr], str]


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
        return {
            "plan": self.plan_id, "service": self.service, "currency": self.currency, "cdrs": self.cdrs,
            "active": format_amount(self.active_micros), "candidate": format_amount(self.candidate_micros),
            "difference": format_amount(self.difference_micros),
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
        return sum(line.difference_micros for line in self.lines)


def default_plan_for(assignments: Mapping[str, str] | None = None, default: str = "") -> PlanFor:
    """Plan by CDR attribute ``plan``, else by a_number, else by tenant, else ``default``."""
    table = dict(assignments or {})

    def plan_for(cdr: MediatedCdr) -> str:
        return cdr.attributes.get("plan") or table.get(cdr.a_number) or table.get(cdr.tenant) or default

    return plan_for


def what_if(cdrs: Iterable[MediatedCdr], candidate: CompiledPlans, active: CompiledPlans,
            plan_for: PlanFor | Mapping[str, str] | None = None) -> WhatIfReport:
    """Rate every CDR with both plan sets (bundles not consumed: a tariff comparison, not a bill)."""
    assign = plan_for if callable(plan_for) else default_plan_for(plan_for)
    a_rater, c_rater = Rater(active), Rater(candidate)
    lines: dict[tuple[str, str], WhatIfLine] = {}
    report = WhatIfReport()
    for cdr in cdrs:
        checkpoint()   # the caller may have gone away: a comparison nobody reads is not finished
        plan_id = assign(cdr)
        a = a_rater.rate(cdr, plan_id)
        c = c_rater.rate(cdr, plan_id)
        if a.status is RatingStatus.REJECTED:
            report.rejected += 1
            continue
        key = (plan_id, str(getattr(cdr.service, "value", cdr.service)))
        line = lines.setdefault(key, WhatIfLine(*key))
        line.cdrs += 1
        line.currency = line.currency or a.currency or c.currency
        if a.rated:
            line.active_micros += a.charge_micros
        else:
            line.active_unrated += 1
        if c.rated:
            line.candidate_micros += c.charge_micros
        else:
            line.candidate_unrated += 1
    report.lines = [lines[k] for k in sorted(lines)]
    return report


def what_if_paths(cdrs: Iterable[MediatedCdr], candidate_paths: Iterable[str], active: CompiledPlans,
                  plan_for: PlanFor | Mapping[str, str] | None = None) -> WhatIfReport:
    """Like :func:`what_if` from candidate plan files: an invalid candidate returns its validation errors, unrated."""
    from engine.plans import compile_plan_set, load_plan_set

    plan_set, problems = load_plan_set(candidate_paths)
    if plan_set is None:
        return WhatIfReport(problems=problems)
    return what_if(cdrs, compile_plan_set(plan_set), active, plan_for)
