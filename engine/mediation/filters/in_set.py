"""Drop records whose value is one of the operands."""

from __future__ import annotations

from operator import not_
from typing import Any, Sequence

from engine.mediation.filters.base import Filter, scalar


class In(Filter):
    kind = "in"

    @classmethod
    def check_operand(cls, operand: Any) -> str | None:
        ok = isinstance(operand, list) and operand and all(scalar(v) for v in operand)
        return None if ok else f"{cls.kind} needs a non-empty list of values"

    def _values(self) -> frozenset[Any]:
        return frozenset(str(v) for v in self.operand) if self.is_column else frozenset(self.operand)

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        return f"{expr} in {name}", {name: self._values()}

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(self._values().__contains__, values))

    def keep_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(not_, map(self._values().__contains__, values)))
