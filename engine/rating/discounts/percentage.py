"""Percentage off the applicable charges."""

from __future__ import annotations

from typing import Any, Sequence

from engine.money import MICROS, round_micros
from engine.rating.discounts.base import ChargeLine, DiscountModel, Predicate


class PercentageDiscount(DiscountModel):
    kind = "percentage"

    def __init__(self, discount_id: str, ir: dict[str, Any], predicate: Predicate | None) -> None:
        super().__init__(discount_id, ir, predicate)
        self._micro_percent: int = ir["percent"]   # 12.5 % -> 12_500_000, exact

    def on_cdr(self, charge_micros: int) -> int:
        return -round_micros(self._micro_percent * charge_micros, 100 * MICROS, self.mode, self.decimals)

    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        return -self.round(self.percent * sum(line.amount_micros for line in lines))
