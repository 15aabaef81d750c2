"""IMSIs: up to 15 ASCII digits."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert
from engine.mediation.problems import ConversionError


class Imsi(Conversion):
    kind = "imsi"
    produces = "text"

    def compile(self, ctx: CompileContext) -> Convert:
        def convert(text: str) -> str:
            if text and (len(text) > 15 or len(text) < 6 or not (text.isdigit() and text.isascii())):
                raise ConversionError("value.bad-imsi", f"IMSI must be up to 15 digits: {text[:40]!r}")
            return text

        return convert
