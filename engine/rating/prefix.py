"""Longest-prefix index: number -> destination group.

A dict per plan version from prefix to group plus the distinct prefix lengths,
longest first: a lookup costs one slice and one dict probe per distinct
length (typically 1-8), whatever the number of prefixes.  Building it from
50,000 prefixes takes a few milliseconds.

A prefix may belong to several groups (a country group and a "world" group):
the group with the highest ``priority`` wins the plain lookup (the batch loops
read :attr:`groups`), and :meth:`candidates` lists every group of every
matching prefix, longest prefix first and by priority within a prefix, for
the evaluator's fall back to a group the plan prices.
"""

from __future__ import annotations

from typing import Iterable, Mapping


class PrefixIndex:
    __slots__ = ("_groups", "_lengths", "_shared", "groups", "groups_get", "lengths")

    def __init__(self, entries: Iterable[tuple[str, str]], priority: Mapping[str, int] | None = None) -> None:
        rank = priority or {}
        self._groups: dict[str, str] = {}
        # prefixes in more than one group: every group, highest priority first (ties keep the entries' order)
        self._shared: dict[str, tuple[str, ...]] = {}
        for prefix, group in entries:
            held = self._groups.get(prefix)
            if held is None:
                self._groups[prefix] = group
                continue
            both = self._shared.get(prefix, (held,))
            if group in both:
                continue
            self._shared[prefix] = tuple(sorted((*both, group), key=lambda g: -rank.get(g, 0)))
            self._groups[prefix] = self._shared[prefix][0]
        self._lengths: tuple[int, ...] = tuple(sorted({len(p) for p in self._groups}, reverse=True))
        # for callers that inline the lookup in a hot loop (the evaluator's batch loops)
        self.groups = self._groups
        self.groups_get = self._groups.get
        self.lengths = self._lengths

    def share(self, other: "PrefixIndex") -> bool:
        """Take ``other``'s tables when they hold exactly what this index holds (the same answers then, from one set of
        tables: what-if's candidate and active plan sets mostly share their destinations, and the C loop keeps one
        compiled table per dict of prefixes, a few MB, which two sides walking the same file then read in turn).
        True when shared."""
        if other is self or (other._groups is self._groups and other._shared is self._shared):
            return True
        if len(other._groups) != len(self._groups) or other._groups != self._groups or other._shared != self._shared:
            return False
        self._groups, self._shared, self._lengths = other._groups, other._shared, other._lengths
        self.groups, self.groups_get, self.lengths = other.groups, other.groups_get, other.lengths
        return True

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

    def candidates(self, number: str) -> list[tuple[str, str]]:
        """Every ``(group, prefix)`` matching ``number``: longest prefix first, by priority within a prefix."""
        out: list[tuple[str, str]] = []
        n = len(number)
        for length in self._lengths:
            if length <= n:
                prefix = number[:length]
                group = self._groups.get(prefix)
                if group is not None:
                    out.extend((g, prefix) for g in self._shared.get(prefix, (group,)))
        return out
