"""The shared base of filter kinds."""

from __future__ import annotations

from operator import not_
from typing import Any, ClassVar, Sequence

from engine.yamlio import Mark


class Filter:
    kind: ClassVar[str]

    def __init__(self, filter_id: str, target: str, is_column: bool, operand: Any, mark: Mark) -> None:
        self.filter_id = filter_id
        self.target = target          # column name/index or CDR field name
        self.is_column = is_column
        self.operand = operand
        self.mark = mark

    @classmethod
    def check_operand(cls, operand: Any) -> str | None:
        """A message when the operand is unusable, else ``None``."""
        return None

    def condition(self, expr: str, name: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def drop_mask(self, values: Sequence[Any]) -> list[bool]:
        """Column-at-a-time form for the batch mapper: True where the record is dropped (C-level loops only)."""
        raise NotImplementedError

    def keep_mask(self, values: Sequence[Any]) -> list[bool]:
        """The complement of :meth:`drop_mask` (True where the record is kept); kinds override it when
        they can build it in one pass."""
        return list(map(not_, self.drop_mask(values)))


def scalar(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)
