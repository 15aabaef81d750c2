"""Rating: compiled plans evaluated against mediated CDRs (pure functions, no I/O).

Public API::

    Evaluator(compiled).rate(cdr, plan_id, bundles=None) -> RatedCdr        # one CDR, explanation on demand
    Evaluator(compiled).rate_rows(rows, plans, wallet_of=None) -> list[Row] # many rows of the normalised layout
    what_if(rows, candidate, active, plan_for) -> WhatIfReport
    apply_period_discounts(lines, discounts) -> list[DiscountLine]
    prorate_bundle(bundle, activation, cycle_start, cycle_end=None) -> ProratedBundle
    add_months(day, months, anchor_day=None) / cycle_bounds(anchor_day, on)
"""

from engine.rating.compiled import CompiledPlans
from engine.rating.discounts import ChargeLine
from engine.rating.evaluator import Evaluator
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.period import ProratedBundle, add_months, apply_period_discounts, cycle_bounds, prorate_bundle, prorate_fee
from engine.rating.result import BundleState, BundleUse, DiscountLine, RatedCdr, RatedSpan, RatingStatus, UnratedReason
from engine.rating.whatif import WhatIfLine, WhatIfReport, default_plan_for, what_if, what_if_paths

__all__ = [
    "BundleState", "BundleUse", "CdrLimits", "ChargeLine", "CompiledPlans", "DEFAULT_LIMITS", "DiscountLine", "Evaluator",
    "ProratedBundle", "RatedCdr", "RatedSpan", "RatingStatus", "UnratedReason", "WhatIfLine", "WhatIfReport", "add_months",
    "apply_period_discounts", "cycle_bounds", "default_plan_for", "prorate_bundle", "prorate_fee", "what_if", "what_if_paths",
]
