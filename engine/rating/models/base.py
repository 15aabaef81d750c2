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

    # The one-span charge depends only on the usage rounded up to the end of the increment it falls in, on this grid
    # of increments laid from 0: (from, increment, from, increment, ...), a flat tuple the C loop reads as it is
    # (empty: on the exact usage).  Many usages then share one memo entry: every call of 1..60 s at 60/1.
    memo_grid: tuple[int, ...] = ()

    def memo_key(self, units: int) -> int:
        """A key that determines the one-span charge of ``units``."""
        return grid_end(self.memo_grid, units)


def grid_end(grid: tuple[int, ...], units: int) -> int:
    """Where the last increment covering ``units`` ends on ``grid`` ((from, increment, ...), from 0; empty: ``units``
    itself).  An increment belongs to the step it starts in and is billed in full even past the next step's start,
    as the stepped model bills (see :mod:`engine.rating.models.stepped`)."""
    if not grid or units <= 0:
        return units
    n = len(grid)
    t = i = 0
    while t < units:
        while i + 2 < n and grid[i + 2] <= t:
            i += 2
        lim = min(units, grid[i + 2]) if i + 2 < n else units
        inc = grid[i + 1]
        t += -(-(lim - t) // inc) * inc
    return t


def memo_grid_of(steps: "tuple[tuple[int, int], ...]") -> tuple[int, ...]:
    """The memo grid of (from, increment) steps; empty (the exact usage) unless they start at 0 with whole increments."""
    if not steps or steps[0][0] != 0 or any(inc <= 0 for _f, inc in steps) or any(b[0] < a[0] for a, b in zip(steps, steps[1:])):
        return ()
    return tuple(x for step in steps for x in step)
