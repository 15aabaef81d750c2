"""Rate models, one per module, picked by the IR's ``model``."""

from __future__ import annotations

from engine.rating.models.base import ChargeModel, Part, RoundingRule
from engine.rating.models.stepped import SteppedModel
from engine.rating.models.tiered import TieredModel, tier_amount_num

MODELS: dict[str, type[ChargeModel]] = {
    SteppedModel.name: SteppedModel,
    TieredModel.name: TieredModel,
}

__all__ = ["MODELS", "ChargeModel", "Part", "RoundingRule", "SteppedModel", "TieredModel", "tier_amount_num"]
