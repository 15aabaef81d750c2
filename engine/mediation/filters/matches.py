"""Drop records whose text value matches a regular expression."""

from __future__ import annotations

import re
from typing import Any, Sequence

from engine.mediation.filters.base import Filter


class Matches(Filter):
    kind = "matches"

    @classmethod
    def check_operand(cls, operand: Any) -> str | None:
        if not isinstance(operand, str):
            return "matches needs a regular expression"
        try:
            re.compile(operand)
        except re.error as exc:
            return f"bad regular expression: {exc}"
        return None

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        return f"{name}({expr}) is not None", {name: re.compile(self.operand).match}

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        return list(map(bool, map(re.compile(self.operand).match, values)))
