"""Data volumes in bytes."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert, in_range, to_int
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


BYTE_UNITS = {"B": 1, "kB": 1000, "KiB": 1024, "MB": 1000_000, "MiB": 1024 * 1024}


class Volume(Conversion):
    """Bytes from B, kB, KiB, MB or MiB (data volumes)."""

    kind = "bytes"
    produces = "int"

    def __init__(self, unit: str = "B") -> None:
        self.unit = unit

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        unit = spec.optional("unit", str, "B")
        if unit not in BYTE_UNITS:
            problems.append(Problem.at(spec.node.mark_of("unit"), "layout.bad-unit", f"{where}: unit must be one of {', '.join(BYTE_UNITS)}"))
        return cls(unit)

    def compile(self, ctx: CompileContext) -> Convert:
        factor = BYTE_UNITS.get(self.unit, 1)

        def convert(text: str) -> int:
            value = to_int(text) if text else 0
            if value < 0:
                raise ConversionError("value.negative", f"negative volume {value}")
            return in_range(value * factor, text)

        return convert
