"""Period discounts on a bill: the discount plans that validate today, applied where the plan says.

Two scopes, in this order:

1. a subscriber's tariff plan: the period discounts the plan version lists, on
   that subscriber's charges under that plan;
2. the account: the account's own discount plans, on all its charges (or the
   charges of the tariff plans the discount plan names in ``plans``).

Inside a scope the money-off discounts (percentage, fixed, tiered) run in the
order they are listed, then the commitments.  Each discount plan declares:

- ``charges``: which charges it looks at (usage by default; fees, one_off);
- ``compounding``: ``gross`` (default) computes it on the applicable charges
  before any discount, ``net`` on what the discounts before it left;
- ``commitment_basis`` (commitments): ``before_discounts`` (default) measures
  spend gross, ``after_discounts`` net of the money-off discounts already
  applied (all of the scope's, since commitments run last).

Money off never exceeds what is left of the applicable charges.  A fixed
amount and a commitment's minimum are prorated by the days the subscriber had
the plan in the cycle (account scope: by the bill's days of the cycle when the
cycle is closed by more than one bill, an interim or a final one; a whole cycle
gets the whole amount).  Spend tiers are measured on each bill's own charges.
Each discount is an
EN 16931 document-level allowance (a commitment shortfall a charge), split
over the VAT categories of the charges it reduces in proportion to them,
rounded so the parts add up to the discount exactly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Callable, Sequence

from engine.billing.catalogue import BillingCatalogue
from engine.billing.model import BillLine, TaxRate
from engine.money import MICROS, MAX_DECIMALS, RoundingMode, round_fraction
from engine.plans.model import CommitmentBasis, Compounding, DiscountKind, DiscountLevel, DiscountPlan
from engine.rating.discounts import ChargeLine, DiscountModel


@dataclass(frozen=True)
class DiscountPart:
    tax: TaxRate
    tax_category: str
    amount_micros: int


@dataclass(frozen=True)
class AppliedDiscount:
    discount_plan: str
    name: str
    charge: bool                 # True: a commitment shortfall (charged); False: money off
    amount_micros: int           # > 0, in minor units
    parts: tuple[DiscountPart, ...]
    subscriber_id: str = ""      # "" for account-level discounts
    tariff_plan: str = ""


@dataclass
class Scope:
    """Which lines a discount list works on, and by how much fixed amounts are prorated."""

    discounts: tuple[str, ...]
    lines: list[int]             # indexes into the bill's lines
    factor: Fraction             # days with the plan / days in the cycle (1 for the account)
    subscriber_id: str = ""
    tariff_plan: str = ""
    fallback_category: str = "standard"
    problems: list[str] = field(default_factory=list)


def _quantum(minor_units: int) -> int:
    return 10 ** (MAX_DECIMALS - minor_units)


def split_exactly(amount: int, weights: Sequence[Fraction], minor_units: int) -> list[int]:
    """``amount`` (a multiple of the minor unit) split in proportion to ``weights``, each part in minor units,
    the parts adding up to ``amount`` exactly (largest remainder)."""
    q = _quantum(minor_units)
    total = sum(weights)
    if total <= 0:
        return [amount] + [0] * (len(weights) - 1)
    exact = [Fraction(amount) * w / total for w in weights]
    floors = [int(e // q) * q for e in exact]
    left = (amount - sum(floors)) // q
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += q
    return floors


class DiscountRun:
    """Applies the scopes of one bill in order, keeping each line's net of discounts."""

    def __init__(self, lines: Sequence[BillLine], catalogue: BillingCatalogue, minor_units: int,
                 tax_for: Callable[[str], TaxRate | None]) -> None:
        self.lines = lines
        self.catalogue = catalogue
        self.minor = minor_units
        self.tax_for = tax_for
        self.applied: list[AppliedDiscount] = []
        self.problems: list[str] = []

    @cached_property
    def net(self) -> list[Fraction]:
        """Each line's net of the discounts applied so far (built when a discount first applies: most bills have none)."""
        return [Fraction(line.amount_micros) for line in self.lines]

    def run(self, scope: Scope) -> None:
        found = [(did, self.catalogue.discount(did)) for did in scope.discounts]
        for did, pair in found:
            if pair is None:
                self.problems.append(f"discount plan {did} is not in the plan set")
        period = [(p, m) for _, pair in found if pair is not None for p, m in [pair] if p.level is DiscountLevel.PERIOD]
        for plan, model in period:
            if plan.kind is not DiscountKind.COMMITMENT:
                self._money_off(plan, model, scope)
        for plan, model in period:
            if plan.kind is DiscountKind.COMMITMENT:
                self._commitment(plan, model, scope)

    def _applicable(self, plan: DiscountPlan, model: DiscountModel, scope: Scope) -> list[int]:
        kinds = {c.value for c in plan.charges}
        out = []
        for i in scope.lines:
            line = self.lines[i]
            if line.charge_type.discount_kind not in kinds:
                continue
            if plan.plans and line.tariff_plan not in plan.plans:
                continue
            if model.applies(ChargeLine(line.amount_micros, line.service, line.destination, "", line.tariff_plan, line.quantity)):
                out.append(i)
        return out

    def _round(self, amount: Fraction) -> int:
        return round_fraction(amount, RoundingMode.HALF_UP, self.minor)

    def _money_off(self, plan: DiscountPlan, model: DiscountModel, scope: Scope) -> None:
        idx = self._applicable(plan, model, scope)
        if not idx:
            return
        gross = plan.compounding is Compounding.GROSS
        amounts = [self.lines[i].amount_micros if gross else round_fraction(self.net[i], RoundingMode.HALF_EVEN, MAX_DECIMALS)
                   for i in idx]
        if plan.kind is DiscountKind.FIXED:
            off = min(self._round(Fraction(model.amount) * scope.factor), max(sum(amounts), 0))
        else:
            off = -model.on_period([ChargeLine(a, self.lines[i].service, self.lines[i].destination, "", self.lines[i].tariff_plan,
                                               self.lines[i].quantity) for i, a in zip(idx, amounts)])
        room = sum(max(self.net[i], Fraction(0)) for i in idx)
        off = min(self._round(Fraction(off)), int(room // _quantum(self.minor)) * _quantum(self.minor))
        if off <= 0:
            return
        weights = [max(self.net[i], Fraction(0)) for i in idx]
        total = sum(weights)
        for i, w in zip(idx, weights):
            self.net[i] -= Fraction(off) * w / total
        self.applied.append(self._parts(plan, off, False, idx, weights, scope))

    def _commitment(self, plan: DiscountPlan, model: DiscountModel, scope: Scope) -> None:
        idx = self._applicable(plan, model, scope)
        if plan.commitment_basis is CommitmentBasis.BEFORE_DISCOUNTS:
            spend = Fraction(sum(self.lines[i].amount_micros for i in idx))
        else:
            spend = sum((self.net[i] for i in idx), Fraction(0))
        minimum = self._round(Fraction(model.amount) * scope.factor)
        shortfall = self._round(Fraction(minimum) - spend) if minimum > spend else 0
        if shortfall <= 0:
            return
        if idx:
            weights = [Fraction(max(self.lines[i].amount_micros, 0)) for i in idx]
            # the shortfall is taxed like the spend it tops up: at the category of the largest part of it
            top = max(range(len(idx)), key=lambda k: (weights[k], -k))
            line = self.lines[idx[top]]
            part = DiscountPart(line.tax, line.tax_category, shortfall)
        else:
            tax = self.tax_for(scope.fallback_category)
            if tax is None:
                return
            part = DiscountPart(tax, scope.fallback_category, shortfall)
        self.applied.append(AppliedDiscount(plan.id, plan.name, True, shortfall, (part,), scope.subscriber_id, scope.tariff_plan))

    def _parts(self, plan: DiscountPlan, amount: int, charge: bool, idx: list[int], weights: list[Fraction], scope: Scope) -> AppliedDiscount:
        by_tax: dict[tuple[object, ...], Fraction] = defaultdict(Fraction)
        info: dict[tuple[object, ...], tuple[TaxRate, str]] = {}
        for i, w in zip(idx, weights):
            line = self.lines[i]
            key = line.tax.key + (line.tax_category,)
            by_tax[key] += w
            info[key] = (line.tax, line.tax_category)
        keys = sorted(by_tax, key=lambda k: str(k))
        split = split_exactly(amount, [by_tax[k] for k in keys], self.minor)
        parts = tuple(DiscountPart(info[k][0], info[k][1], a) for k, a in zip(keys, split) if a)
        return AppliedDiscount(plan.id, plan.name, charge, amount, parts, scope.subscriber_id, scope.tariff_plan)


def unit_of(minor_units: int) -> int:
    """Micros in one minor unit (10_000 for cents)."""
    return MICROS // 10 ** minor_units
