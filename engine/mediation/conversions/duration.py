"""Durations in whole seconds from s, ds, cs, ms or minutes."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert, to_int
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


DURATION_UNITS = {"s": 1, "ds": 10, "cs": 100, "ms": 1000}


class Duration(Conversion):
    """Whole seconds from s/ds/cs/ms or minutes; partial seconds round per ``rounding`` (default up: bill what was used)."""

    kind = "duration"
    produces = "int"

    def __init__(self, unit: str = "s", rounding: str = "up") -> None:
        self.unit = unit
        self.rounding = rounding

    def inline(self) -> tuple[str, str] | None:
        return ("int({v} or 0)", "{t} < 0") if self.unit == "s" else None

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
        if self.unit == "min":
            def minutes(text: str) -> int:
                value = to_int(text) if text else 0
                if value < 0:
                    raise ConversionError("value.negative", f"negative duration {value}")
                return value * 60
            return minutes
        per_second = DURATION_UNITS[self.unit]
        if per_second == 1:
            def seconds(text: str) -> int:
                value = to_int(text) if text else 0
                if value < 0:
                    raise ConversionError("value.negative", f"negative duration {value}")
                return value
            return seconds
        half = per_second // 2
        rounding = self.rounding

        def fractions(text: str) -> int:
            value = to_int(text) if text else 0
            if value < 0:
                raise ConversionError("value.negative", f"negative duration {value}")
            if rounding == "up":
                return -(-value // per_second)
            if rounding == "down":
                return value // per_second
            return (value + half) // per_second

        return fractions
