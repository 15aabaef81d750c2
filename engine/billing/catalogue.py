"""What the bill run reads from a plan set: plan versions by day, bundles, discount models, tax tables.

Built from the parsed plan set (the stored version's sources, so the billing
fields of ``plans/`` — fee timing, tax categories, discount compounding — are
there) and its compiled evaluators (the discount models rating uses too).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable

from engine.billing.taxes import TaxBook
from engine.plans.model import Bundle, DiscountPlan, PlanSet, PlanVersion, TariffPlan
from engine.rating.discounts import DiscountModel


@dataclass
class BillingCatalogue:
    plan_set: PlanSet
    discount_models: dict[str, DiscountModel]
    version: int = 0
    taxes: TaxBook = field(init=False)
    # a usage line's name by (service, destination group, language): compute_bill's, the same on every bill of a run
    usage_names: dict[tuple[str, str, str], str] = field(init=False, default_factory=dict, repr=False, compare=False)
    # a subscriber's fee charges by the shape of its service (engine.billing.fees.recurring_fees): the same few on every bill of a run
    fee_shapes: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = field(init=False, default_factory=dict, repr=False, compare=False)

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


class PlanSetCatalogues:
    """The billing catalogue of the plan set version in force for a tenant (its operator's when it has none),
    parsed from the version's stored sources once per version."""

    def __init__(self, version_at: Callable[[str, datetime], Any], parent_of: Callable[[str], str], size: int = 8) -> None:
        self._version_at = version_at       # (tenant, at) -> (PlanSetVersion | None, compiled | None)
        self._parent_of = parent_of
        self._cache: OrderedDict[tuple[str, int], BillingCatalogue] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __call__(self, tenant_id: str, at: datetime) -> BillingCatalogue | None:
        version, compiled = self._version_at(tenant_id, at)
        if version is None:
            parent = self._parent_of(tenant_id)
            if not parent:
                return None
            version, compiled = self._version_at(parent, at)
            if version is None:
                return None
        key = (version.tenant_id, version.version)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        from engine.plans.catalogue import validate_files

        plan_set, problems = validate_files(version.sources)
        if plan_set is None:  # pragma: no cover - stored versions were validated at upload
            raise ValueError(f"plan set {key} no longer validates: {problems[:3]}")
        found = BillingCatalogue.from_plan_set(plan_set, version.version, compiled)
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return found
