"""Exact raw values to declared values (e.g. the service by a record-type column)."""

from __future__ import annotations

from typing import Any

from engine.mediation.conversions.base import CompileContext, Conversion, Convert
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


class ValueMap(Conversion):
    """Exact raw values to declared values (service or direction by a column value)."""

    kind = "map"
    produces = "text"

    def __init__(self, values: dict[str, str], default: str | None) -> None:
        self.values = values
        self.default = default

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        values: Any = spec.required("values", dict) or {}
        default = spec.optional("default", str)
        clean: dict[str, str] = {}
        for raw, out in values.items():
            if not isinstance(out, str):
                problems.append(Problem.at(values.mark_of(raw), "schema.type", f"{where}.values.{raw}: expected text"))
                continue
            clean[str(raw)] = out
        return cls(clean, default)

    def outputs(self) -> list[str]:
        return list(self.values.values()) + ([self.default] if self.default is not None else [])

    def compile(self, ctx: CompileContext) -> Convert:
        values, default = dict(self.values), self.default

        def convert(text: str) -> str:
            out = values.get(text, default)
            if out is None:
                raise ConversionError("value.unmapped", f"no mapping for {text[:40]!r}")
            return out

        return convert
