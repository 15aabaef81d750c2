"""Drop records whose value is none of the operands (keep only the listed ones)."""

from __future__ import annotations

from operator import not_
from typing import Any, Sequence

from engine.mediation.filters.in_set import In


class NotIn(In):
    kind = "not_in"

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        return f"{expr} not in {name}", {name: self._values()}

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(not_, map(self._values().__contains__, values)))

    def keep_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(self._values().__contains__, values))
