"""Percentage off the applicable charges."""

from __future__ import annotations

from typing import Sequence

from engine.rating.discounts.base import ChargeLine, DiscountModel


class PercentageDiscount(DiscountModel):
    kind = "percentage"

    def on_cdr(self, charge_micros: int) -> int:
        return -self.round(self.percent * charge_micros)

    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        return -self.round(self.percent * sum(line.amount_micros for line in lines))
