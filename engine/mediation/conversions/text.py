"""Text as it is (optionally stripped)."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert
from engine.yamlio import Fields, Problem


class Text(Conversion):
    kind = "text"
    produces = "text"

    def __init__(self, strip: bool = False) -> None:
        self.strip = strip

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        return cls(spec.optional("strip", bool, False))

    def compile(self, ctx: CompileContext) -> Convert:
        return str.strip if self.strip else str
