"""A filter that drops exactly the records another one keeps (a leg rule says which legs are billable)."""

from __future__ import annotations

from typing import Any, Sequence

from engine.mediation.filters.base import Filter


class Negated(Filter):
    kind = "negated"   # never named in a layout: built from a condition that says what to keep

    def __init__(self, filter_id: str, inner: Filter) -> None:
        super().__init__(filter_id, inner.target, inner.is_column, inner.operand, inner.mark)
        self.inner = inner

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        cond, names = self.inner.condition(expr, name)
        return f"not ({cond})", names

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return self.inner.keep_mask(values)

    def keep_mask(self, values: Sequence[Any]) -> list[bool]:
        return self.inner.drop_mask(values)
