"""Rows held as columns: a chunk of CDR rows as the block splitter gives them, one list per column.

Rating a CDR file reads a chunk's cells column by column (the evaluator's C loop
takes the columns themselves), so the rows of a file are never built as row
tuples unless something asks for one (the few rows the per-CDR way rates, a
replay's details).  No imports from the rest of the engine: the evaluator and the
CSV reading both use it.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import Any, Iterator, Sequence, overload


class ColumnRows(Sequence[tuple[Any, ...]]):
    """Rows held as columns (one list per column, all of the same length), as the block splitter gives them.

    Rating reads a chunk's cells column by column (the evaluator's C loop takes the columns themselves), so most
    rows are never built as tuples; indexing or iterating builds a row tuple on demand (the few rows the per-CDR
    way takes, details)."""

    __slots__ = ("columns", "_count")

    def __init__(self, columns: list[list[Any]], count: int) -> None:
        self.columns = columns
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, i: slice) -> "ColumnRows": ...

    def __getitem__(self, i: int | slice) -> "tuple[Any, ...] | ColumnRows":
        if isinstance(i, slice):
            return ColumnRows([c[i] for c in self.columns], len(range(*i.indices(self._count))))
        if not -self._count <= i < self._count:
            raise IndexError("row index out of range")
        return tuple([c[i] for c in self.columns])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return zip(*self.columns) if self.columns else iter([()] * self._count)

    def column(self, k: int) -> list[Any]:
        return self.columns[k]


def column_of(rows: Sequence[Sequence[Any]], k: int) -> list[Any]:
    """Column ``k`` of the rows (the list itself for :class:`ColumnRows`; every row must have the column)."""
    return rows.column(k) if isinstance(rows, ColumnRows) else list(map(itemgetter(k), rows))


def take_rows(rows: Sequence[Sequence[Any]], mask: Sequence[Any]) -> Sequence[Sequence[Any]]:
    """The rows whose ``mask`` item is true, in order (columns stay columns)."""
    if isinstance(rows, ColumnRows):
        kept = [list(compress(c, mask)) for c in rows.columns]
        return ColumnRows(kept, len(kept[0]) if kept else sum(map(bool, mask)))
    return list(compress(rows, mask))


__all__ = ["ColumnRows", "column_of", "take_rows"]
