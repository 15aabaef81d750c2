"""Stepped pricing: a price per ``per`` units, billed in increments, changing at step offsets.

Increments are laid on one grid from the start of the event: an increment
belongs to the step (and to the band span) in which it *starts* and is
charged in full at that step's price, even when it runs past the step's or
the span's end; the next increment starts where it ended.  So a 60/60 call
that enters off-peak 20 s into a minute pays that whole minute at the peak
price, and the off-peak span starts with the next minute.  The number of
increments of a step is computed, not counted: the cost does not grow with
the usage.
"""

from __future__ import annotations

from bisect import bisect_right
from math import lcm
from typing import Any

from engine.money import round_micros
from engine.rating.models.base import ChargeModel, Part, RoundingRule, memo_grid_of


class SteppedModel(ChargeModel):
    name = "stepped"
    splits_by_band = True

    def __init__(self, rate_id: str, ir: dict[str, Any], rounding: RoundingRule) -> None:
        super().__init__(rate_id, ir, rounding)
        self.steps: tuple[tuple[int, int, int, int], ...] = tuple((s[0], s[1], s[2], s[3]) for s in ir["steps"])
        self.starts = [s[0] for s in self.steps]
        self.per_increment = rounding.scope == "per_increment"
        # legacy tariffs publish a rounded price per increment: each increment of a step costs that
        self.each = {(p, per, inc): round_micros(p * inc, per, rounding.mode, rounding.decimals) for _f, p, per, inc in self.steps}
        self.den = 1 if self.per_increment else lcm(*(s[2] for s in self.steps))
        # the charge depends only on the billed units: where the increments laid from 0 end
        self.memo_grid = memo_grid_of(tuple((s[0], s[3]) for s in self.steps))

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

    def amount_num(self, parts: list[Part]) -> int:
        total = 0
        den = self.den
        for p in parts:
            charged = p.units - p.covered
            if charged:
                if self.per_increment:
                    total += self.each[(p.price_micros, p.per, p.increment)] * -(-charged // p.increment)
                else:
                    total += p.price_micros * charged * (den // p.per)
        return total
