"""Rating: compiled plans evaluated against mediated CDRs (pure functions, no I/O).

Public API::

    Rater(compiled).rate(cdr, subscriber_plan_id, bundle_state=None) -> RatedCdr
    BulkRater(compiled, header).row_rater(plan_id)(csv_row) -> (status, charge_micros, rate_id_or_reason)
    what_if(cdrs, candidate, active, plan_for) -> WhatIfReport
    apply_period_discounts(lines, discounts) -> list[DiscountLine]
    prorate_bundle(bundle, activation, cycle_start, cycle_end=None) -> ProratedBundle
    add_months(day, months, anchor_day=None) / cycle_bounds(anchor_day, on)
"""

from engine.rating.bulk import BulkRater
from engine.rating.compiled import CompiledPlans
from engine.rating.discounts import ChargeLine
from engine.rating.period import ProratedBundle, add_months, apply_period_discounts, cycle_bounds, prorate_bundle, prorate_fee
from engine.rating.rater import Rater
from engine.rating.result import BundleState, BundleUse, DiscountLine, RatedCdr, RatedSpan, RatingStatus, UnratedReason
from engine.rating.whatif import WhatIfLine, WhatIfReport, default_plan_for, what_if, what_if_paths

__all__ = [
    "BulkRater", "BundleState", "BundleUse", "ChargeLine", "CompiledPlans", "DiscountLine", "ProratedBundle", "RatedCdr",
    "RatedSpan", "Rater", "RatingStatus", "UnratedReason", "WhatIfLine", "WhatIfReport", "add_months", "apply_period_discounts",
    "cycle_bounds", "default_plan_for", "prorate_bundle", "prorate_fee", "what_if", "what_if_paths",
]
