"""Seconds or milliseconds since 1970 (UTC), to ISO 8601 UTC; a decimal fraction (``1796533796.571``) is cut."""

from __future__ import annotations

from datetime import datetime

from engine.mediation.conversions.base import MS_TEXT, UTC, CompileContext, Conversion, Convert, to_fraction
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


class Epoch(Conversion):
    """Seconds (or milliseconds) since 1970-01-01 UTC; ``0`` or empty means "never" and is rejected.

    Switches that log milliseconds as a fraction (Kamailio's acc: ``1796533796.571``) are read
    exactly and cut to the second, as the normalised CDR keeps whole seconds."""

    kind = "epoch"
    produces = "time"

    def __init__(self, unit: str = "s") -> None:
        self.unit = unit

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        unit = spec.optional("unit", str, "s")
        if unit not in ("s", "ms"):
            problems.append(Problem.at(spec.node.mark_of("unit"), "layout.bad-unit", f"{where}: unit must be s or ms"))
        return cls(unit)

    def compile(self, ctx: CompileContext) -> Convert:
        divisor = 1000 if self.unit == "ms" else 1
        hours: dict[int, str] = {}
        ms_text = MS_TEXT

        def convert(text: str) -> str:
            if text:
                numerator, denominator = to_fraction(text)
                seconds = numerator // (denominator * divisor)
            else:
                seconds = 0
            if seconds <= 0 or seconds >= 253402300800:  # year 10000
                raise ConversionError("value.bad-timestamp", f"epoch {text[:40]!r} is out of range")
            hour, rest = divmod(seconds, 3600)
            prefix = hours.get(hour)
            if prefix is None:
                prefix = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:")
                if len(hours) < 100_000:
                    hours[hour] = prefix
            return prefix + ms_text[rest] + "Z"

        return convert
