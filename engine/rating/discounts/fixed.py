"""A fixed amount off, never more than the applicable charges (a discount does not pay the customer)."""

from __future__ import annotations

from typing import Sequence

from engine.rating.discounts.base import ChargeLine, DiscountModel


class FixedDiscount(DiscountModel):
    kind = "fixed"

    def on_cdr(self, charge_micros: int) -> int:
        return -min(self.amount, max(charge_micros, 0))

    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        return -min(self.amount, max(sum(line.amount_micros for line in lines), 0))
