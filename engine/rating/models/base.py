"""Shared base of the rate models: how usage becomes billed parts, and parts become money.

Money here is exact and integer: a model's amount is a numerator over its fixed
denominator ``den`` (micro-units), so a price per 60 s times 70 s stays exact
without fractions; the evaluator rounds once where the plan says.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from engine.money import RoundingMode


@dataclass(slots=True)
class Part:
    """A run of billed increments priced alike, inside one span."""

    span: int            # index of the span it belongs to
    start: int           # offset (in units) of its first increment
    units: int           # billed units: increments x increment size
    increment: int
    price_micros: int    # per `per` units (0 for tiered: the model prices the total)
    per: int
    covered: int = 0     # units paid by bundles

    @property
    def charged(self) -> int:
        return self.units - self.covered


@dataclass(frozen=True, slots=True)
class RoundingRule:
    mode: RoundingMode
    decimals: int
    scope: str           # per_call | per_span | per_increment


class ChargeModel(ABC):
    """One pricing model; :data:`engine.rating.models.MODELS` picks it by the IR's ``model``."""

    name: str = ""
    splits_by_band: bool = True
    den: int = 1         # the amount's denominator (micro-units = amount_num / den)

    def __init__(self, rate_id: str, ir: dict[str, Any], rounding: RoundingRule) -> None:
        self.rate_id = rate_id
        self.rounding = rounding

    @abstractmethod
    def parts(self, span: int, t: int, span_end: int, total: int, out: list[Part]) -> int:
        """Append the parts for increments starting in ``[t, min(span_end, total))``; return the new ``t``."""

    @abstractmethod
    def amount_num(self, parts: list[Part]) -> int:
        """Exact money of the charged units of ``parts`` (one span's parts): the numerator over :attr:`den` micros."""

    # the one-span charge depends only on usage rounded up to whole multiples of this (0: on the exact usage)
    memo_step: int = 0

    def memo_key(self, units: int) -> int:
        """A key that determines the one-span charge of ``units``."""
        step = self.memo_step
        return -(-units // step) * step if step and units > 0 else units
