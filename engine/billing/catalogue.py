"""What the bill run reads from a plan set: plan versions by day, bundles, discount models, tax tables.

Built from the parsed plan set (the stored version's sources, so the billing
fields of ``plans/`` — fee timing, tax categories, discount compounding — are
there) and its compiled evaluators (the discount models rating uses too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.billing.taxes import TaxBook
from engine.plans.model import Bundle, DiscountPlan, PlanSet, PlanVersion, TariffPlan
from engine.rating.discounts import DiscountModel


@dataclass
class BillingCatalogue:
    plan_set: PlanSet
    discount_models: dict[str, DiscountModel]
    version: int = 0
    taxes: TaxBook = field(init=False)

    def __post_init__(self) -> None:
        self.taxes = TaxBook(self.plan_set.tax_tables)

    @classmethod
    def from_plan_set(cls, plan_set: PlanSet, version: int = 0, compiled: Any = None) -> "BillingCatalogue":
        if compiled is None:
            from engine.plans.compiler import compile_plan_set

            compiled = compile_plan_set(plan_set)
        return cls(plan_set, dict(compiled.discounts), version)

    def tariff_plan(self, plan_id: str) -> TariffPlan | None:
        return self.plan_set.tariff_plans.get(plan_id)

    def plan_version(self, plan_id: str, day: date) -> PlanVersion | None:
        """The version in force on ``day`` (effective dates are local days, like the account's)."""
        plan = self.plan_set.tariff_plans.get(plan_id)
        if plan is None:
            return None
        found = None
        for v in plan.versions:
            if v.effective_from <= day:
                found = v
        return found

    def bundle(self, bundle_id: str) -> Bundle | None:
        return self.plan_set.bundles.get(bundle_id)

    def discount(self, discount_id: str) -> tuple[DiscountPlan, DiscountModel] | None:
        plan = self.plan_set.discount_plans.get(discount_id)
        model = self.discount_models.get(discount_id)
        return None if plan is None or model is None else (plan, model)

    def destination_name(self, group: str) -> str:
        found = self.plan_set.destinations.get(group)
        return found.name if found is not None else group
