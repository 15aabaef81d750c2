"""A non-negative integer (empty means 0)."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert, to_int
from engine.mediation.problems import ConversionError


class Integer(Conversion):
    kind = "integer"
    produces = "int"

    def inline(self) -> tuple[str, str] | None:
        return ("int({v} or 0)", "{t} < 0 or {t} > 9223372036854775807")

    def compile(self, ctx: CompileContext) -> Convert:
        def convert(text: str) -> int:
            value = to_int(text) if text else 0
            if value < 0:
                raise ConversionError("value.negative", f"negative value {value}")
            return value

        return convert
