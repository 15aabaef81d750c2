"""Which tariff plan a caller may name for a CDR (RatingService's ``options.tariff_plan``).

A CDR rated with a plan named in the request is rated with that plan only when it is the CDR tenant's: any plan of the
tenant's own plan set (the operator's CDRs in the operator's set: any of its plans), else, in its operator's plan set,
a retail plan whose ``tenant`` is the CDR's tenant or the wholesale plan whose ``customer`` it is.  Another tenant's
plan (an MVNO naming another MVNO's wholesale plan, or its hosted retail plan) is answered exactly as a plan the set
does not hold: unrated, ``no-plan``, so that a name never tells whether such a plan exists or what it charges.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from engine.cdr import COLUMNS
from engine.rating.compiled import CompiledPlans, no_plans

_TENANT = itemgetter(COLUMNS.index("tenant"))
# what a row rated with another tenant's plan is rated in: a plan set holding no plan at all
WITHOUT_PLANS: CompiledPlans = no_plans()


def may_name(version: Any, compiled: CompiledPlans, plan_id: str, tenant: str) -> bool:
    """Whether a CDR of ``tenant`` rated in ``compiled`` (plan set ``version``) may be rated with ``plan_id``."""
    if version is not None and version.tenant_id == tenant:
        return True   # the tenant's own plan set is all its own
    plan = compiled.plan(plan_id)
    # a plan the set does not hold is unknown anyway
    return plan is None or plan.tenant == tenant or (plan.segment == "wholesale" and plan.customer == tenant)


def hide_plans_of_others(chunk: Any, tariff_plan: str) -> None:
    """Rate the rows of ``chunk`` (engine.rating.desk._Chunk, resolved) whose named ``tariff_plan`` is another
    tenant's as a plan set without it would rate them (their plan set version is kept, as for an unknown plan)."""
    if not tariff_plan:
        return
    versions, compileds = chunk.versions, chunk.compileds
    tenants = list(map(_TENANT, chunk.rows))
    # one decision per (plan set, tenant): a chunk holds few of them
    if not tenants:
        return
    if len(set(zip(map(id, versions), map(id, compileds), tenants))) == 1:   # the usual chunk: one test, at C speed
        if compileds[0] is None or may_name(versions[0], compileds[0], tariff_plan, tenants[0]):
            return
    decided: dict[tuple[int, int, str], bool] = {}
    for i, (version, compiled, tenant) in enumerate(zip(versions, compileds, tenants)):
        if compiled is None:
            continue
        key = (id(version), id(compiled), tenant)
        ok = decided.get(key)
        if ok is None:
            ok = decided[key] = may_name(version, compiled, tariff_plan, tenant)
        if not ok:
            compileds[i] = WITHOUT_PLANS
