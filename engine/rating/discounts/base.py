"""Shared base of the discount models and the charge line they work on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

from engine.money import MICROS, RoundingMode, round_fraction

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class ChargeLine:
    """One amount to discount: a rated CDR's charge, or a period total per service/destination."""

    amount_micros: int
    service: str = ""
    destination: str = ""
    zone: str = ""
    plan_id: str = ""
    units: int = 0
    facts: Mapping[str, Any] = field(default_factory=dict)  # extra fields for conditions

    def as_facts(self) -> dict[str, Any]:
        out = dict(self.facts)
        out.update({"service": self.service, "destination": self.destination, "zone": self.zone, "plan": self.plan_id,
                    "units": self.units, "charge_micros": self.amount_micros})
        return out


class DiscountModel(ABC):
    """One discount kind; :data:`engine.rating.discounts.DISCOUNTS` picks it by the IR's ``type``."""

    kind: str = ""

    def __init__(self, discount_id: str, ir: dict[str, Any], predicate: Predicate | None) -> None:
        self.id = discount_id
        self.name: str = ir["name"]
        self.level: str = ir["level"]
        self.currency: str = ir["currency"]
        self.services = frozenset(ir["services"])
        self.destinations = frozenset(ir["destinations"])
        self.predicate = predicate
        self.mode = RoundingMode(ir["rounding"]["mode"])
        self.decimals: int = ir["rounding"]["decimals"]
        self.percent = Fraction(ir["percent"], 100 * MICROS)
        self.amount: int = ir["amount"]

    def applies(self, line: ChargeLine) -> bool:
        if self.services and line.service not in self.services:
            return False
        if self.destinations and line.destination not in self.destinations:
            return False
        return self.predicate is None or bool(self.predicate(line.as_facts()))

    def round(self, amount: Fraction) -> int:
        """Round a discount's magnitude (the sign is applied by the caller)."""
        return round_fraction(amount, self.mode, self.decimals)

    def on_cdr(self, charge_micros: int) -> int:
        """Money off one rated CDR (<= 0).  Only percentage and fixed discounts work per CDR."""
        return 0

    @abstractmethod
    def on_period(self, lines: Sequence[ChargeLine]) -> int:
        """Money off (negative) or added (commitment shortfall, positive) for the applicable ``lines``."""
