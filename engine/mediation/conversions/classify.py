"""Ordered regular-expression cases on a raw value; the first match wins."""

from __future__ import annotations

import re
from typing import Any

from engine.mediation.conversions.base import CompileContext, Conversion, Convert
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem


class Classify(Conversion):
    """Ordered regular-expression cases on one raw value (e.g. service by number pattern); first match wins."""

    kind = "classify"
    produces = "text"

    def __init__(self, cases: list[tuple[str, str]], default: str | None) -> None:
        self.cases = cases
        self.default = default

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        raw_cases: Any = spec.required("cases", list) or []
        default = spec.optional("default", str)
        cases: list[tuple[str, str]] = []
        for i, case in enumerate(raw_cases):
            c = Fields(case, f"{where}.cases[{i}]", problems, raw_cases.mark_of(i))
            pattern = c.required("matches", str)
            value = c.required("value", str)
            c.done()
            if pattern is None or value is None:
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(Problem.at(c.node.mark_of("matches"), "layout.bad-pattern", f"{where}.cases[{i}]: {exc}"))
                continue
            cases.append((pattern, value))
        return cls(cases, default)

    def outputs(self) -> list[str]:
        return [v for _, v in self.cases] + ([self.default] if self.default is not None else [])

    def compile(self, ctx: CompileContext) -> Convert:
        compiled = [(re.compile(p).match, v) for p, v in self.cases]
        default = self.default

        def convert(text: str) -> str:
            for match, value in compiled:
                if match(text):
                    return value
            if default is None:
                raise ConversionError("value.unclassified", f"no case matches {text[:40]!r}")
            return default

        return convert
