"""Durations in whole seconds from s, ds, cs, ms or minutes, whole or with a decimal fraction."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert, in_range, to_fraction, to_int
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


DURATION_UNITS = {"s": 1, "ds": 10, "cs": 100, "ms": 1000}


class Duration(Conversion):
    """Whole seconds from s/ds/cs/ms or minutes; partial seconds round per ``rounding`` (default up: bill what was used).

    A value may carry a decimal fraction (``2.008`` seconds, as Kamailio's acc writes it); it is read
    exactly and rounded the same way."""

    kind = "duration"
    produces = "int"

    def __init__(self, unit: str = "s", rounding: str = "up") -> None:
        self.unit = unit
        self.rounding = rounding

    def inline(self) -> tuple[str, str] | None:
        # whole seconds in the common case; a fraction or a value out of range takes the converter
        return ("int({v} or 0)", "{t} < 0 or {t} > 9223372036854775807") if self.unit == "s" else None

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        unit = spec.optional("unit", str, "s")
        rounding = spec.optional("rounding", str, "up")
        if unit not in DURATION_UNITS and unit != "min":
            problems.append(Problem.at(spec.node.mark_of("unit"), "layout.bad-unit", f"{where}: unit must be one of s, ds, cs, ms, min"))
        if rounding not in ("up", "down", "nearest"):
            problems.append(Problem.at(spec.node.mark_of("rounding"), "layout.bad-rounding", f"{where}: rounding must be up, down or nearest"))
        return cls(unit, rounding)

    def compile(self, ctx: CompileContext) -> Convert:
        # seconds = value x per_unit_num / per_unit_den, exactly, then rounded
        num, den = (60, 1) if self.unit == "min" else (1, DURATION_UNITS[self.unit])
        rounding = self.rounding
        whole_seconds = num == 1 and den == 1

        def convert(text: str) -> int:
            if not text:
                return 0
            if text[0] == "-":
                raise ConversionError("value.negative", f"negative duration {text[:24]}")
            if whole_seconds and "." not in text:
                return to_int(text)
            value, scale = to_fraction(text) if "." in text else (to_int(text), 1)
            top, bottom = value * num, scale * den
            if rounding == "up":
                out = -(-top // bottom)
            elif rounding == "down":
                out = top // bottom
            else:
                out = (2 * top + bottom) // (2 * bottom)
            return in_range(out, text)

        return convert
