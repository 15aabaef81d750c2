"""Telephone numbers to E.164 by the layout's numbering plan."""

from __future__ import annotations

from engine.mediation.conversions.base import CompileContext, Conversion, Convert


class Number(Conversion):
    """A dialled or presented number to E.164 by the layout's numbering plan."""

    kind = "number"
    produces = "text"

    def compile(self, ctx: CompileContext) -> Convert:
        return ctx.numbering.compile()
