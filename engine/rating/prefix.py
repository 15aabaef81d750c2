"""Longest-prefix index: number -> destination group.

A dict per plan version from prefix to group plus the distinct prefix lengths,
longest first: a lookup costs one slice and one dict probe per distinct
length (typically 1-8), whatever the number of prefixes.  Building it from
50,000 prefixes takes a few milliseconds.
"""

from __future__ import annotations

from typing import Iterable


class PrefixIndex:
    __slots__ = ("_groups", "_lengths", "groups", "groups_get", "lengths")

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._groups: dict[str, str] = {}
        for prefix, group in entries:
            self._groups[prefix] = group
        self._lengths: tuple[int, ...] = tuple(sorted({len(p) for p in self._groups}, reverse=True))
        # for callers that inline the lookup in a hot loop (the evaluator's batch loops)
        self.groups = self._groups
        self.groups_get = self._groups.get
        self.lengths = self._lengths


    def __len__(self) -> int:
        return len(self._groups)

    def lookup(self, number: str) -> tuple[str, str]:
        """``(group, matched prefix)``; ``("", "")`` when no prefix matches."""
        groups = self._groups
        n = len(number)
        for length in self._lengths:
            if length <= n:
                group = groups.get(number[:length])
                if group is not None:
                    return group, number[:length]
        return "", ""
