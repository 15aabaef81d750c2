"""Commitment (minimum spend): when applicable spend falls short of the commitment, the shortfall is charged."""

from __future__ import annotations

from typing import Sequence

from engine.rating.discounts.base import ChargeLine, DiscountModel


class CommitmentDiscount(DiscountModel):
    kind = "commitment"

    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        spend = sum(line.amount_micros for line in lines)
        return max(self.amount - spend, 0)
