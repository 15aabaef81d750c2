"""Stepped pricing: a price per ``per`` units, billed in increments, changing at step offsets.

Increments are laid on one grid from the start of the event: an increment
belongs to the step (and to the band span) in which it *starts* and is
charged in full at that step's price, even when it runs past the step's or
the span's end; the next increment starts where it ended.  So a 60/60 call
that enters off-peak 20 s into a minute pays that whole minute at the peak
price, and the off-peak span starts with the next minute.
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from typing import Any

from engine.money import round_micros
from engine.rating.models.base import ChargeModel, Part, RoundingRule


class SteppedModel(ChargeModel):
    name = "stepped"
    splits_by_band = True

    def __init__(self, rate_id: str, ir: dict[str, Any], rounding: RoundingRule) -> None:
        super().__init__(rate_id, ir, rounding)
        self.steps: tuple[tuple[int, int, int, int], ...] = tuple(tuple(s) for s in ir["steps"])
        self.starts = [s[0] for s in self.steps]
        self.per_increment = rounding.scope == "per_increment"

    def parts(self, span: int, t: int, span_end: int, total: int, out: list[Part]) -> int:
        limit = min(span_end, total)
        steps = self.steps
        while t < limit:
            i = bisect_right(self.starts, t) - 1
            _from, price, per, inc = steps[i]
            lim = min(limit, steps[i + 1][0]) if i + 1 < len(steps) else limit
            n = -(-(lim - t) // inc)
            out.append(Part(span, t, n * inc, inc, price, per))
            t += n * inc
        return t

    def amount(self, parts: list[Part]) -> Fraction:
        total = Fraction(0)
        for p in parts:
            charged = p.charged
            if not charged:
                continue
            if self.per_increment:
                # legacy tariffs publish a rounded price per increment; every increment costs that
                r = self.rounding
                each = round_micros(p.price_micros * p.increment, p.per, r.mode, r.decimals)
                total += each * -(-charged // p.increment)
            else:
                total += Fraction(p.price_micros * charged, p.per)
        return total
