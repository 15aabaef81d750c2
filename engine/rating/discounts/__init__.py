"""Discount models, one per module, picked by the IR's ``type``."""

from __future__ import annotations

from engine.rating.discounts.base import ChargeLine, DiscountModel, Predicate
from engine.rating.discounts.commitment import CommitmentDiscount
from engine.rating.discounts.fixed import FixedDiscount
from engine.rating.discounts.percentage import PercentageDiscount
from engine.rating.discounts.tiered import TieredDiscount

DISCOUNTS: dict[str, type[DiscountModel]] = {
    m.kind: m for m in (PercentageDiscount, FixedDiscount, TieredDiscount, CommitmentDiscount)
}

__all__ = ["DISCOUNTS", "ChargeLine", "DiscountModel", "Predicate"]
