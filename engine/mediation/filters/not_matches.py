"""Drop records whose text value does not match a regular expression (keep only the matching ones)."""

from __future__ import annotations

from operator import not_
from typing import Any, Sequence

from engine.mediation.filters.matches import Matches


class NotMatches(Matches):
    kind = "not_matches"

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        cond, names = super().condition(expr, name)
        return f"not ({cond})", names

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(not_, super().drop_mask(values)))

    def keep_mask(self, values: Sequence[Any]) -> list[bool]:
        return super().drop_mask(values)
