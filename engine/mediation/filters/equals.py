"""Drop records whose value equals the operand."""

from __future__ import annotations

from itertools import repeat
from operator import eq
from typing import Any, Sequence

from engine.mediation.filters.base import Filter, scalar


class Equals(Filter):
    kind = "equals"

    @classmethod
    def check_operand(cls, operand: Any) -> str | None:
        return None if scalar(operand) else "equals needs one text or integer value"

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        value = str(self.operand) if self.is_column else self.operand
        return f"{expr} == {name}", {name: value}

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        value = str(self.operand) if self.is_column else self.operand
        return list(map(eq, values, repeat(value)))
