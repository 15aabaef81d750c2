"""Drop records whose integer value is under a threshold."""

from __future__ import annotations

from itertools import repeat
from operator import lt
from typing import Any, Sequence

from engine.mediation.filters.base import Filter


class Below(Filter):
    """Numeric field under a threshold (e.g. calls shorter than 3 s are signalling noise)."""

    kind = "below"

    @classmethod
    def check_operand(cls, operand: Any) -> str | None:
        return None if isinstance(operand, int) and not isinstance(operand, bool) else "below needs an integer"

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        return f"{expr} < {name}", {name: self.operand}

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(lt, values, repeat(self.operand)))
