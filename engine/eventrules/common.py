"""Pieces every rule-file kind shares: ids, priorities, durations, conditions."""

from __future__ import annotations

import re
from typing import Any

from engine.conditions import ALWAYS, Condition, parse_condition
from engine.yamlio import Fields, Mark, Problem

ID_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION_RE = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rule_id(f: Fields, key: str, problems: list[Problem], what: str) -> str | None:
    value = f.required(key, str)
    if value is not None and not ID_RE.match(value):
        problems.append(Problem.at(f.node.mark_of(key), "rule.bad-id", f"{what}: id {value!r} must be UPPER_SNAKE (e.g. BAR_PREMIUM)"))
        return None
    return value


def priority(f: Fields, problems: list[Problem]) -> int:
    return f.optional("priority", int, default=0)


def when(f: Fields, key: str, what: str, problems: list[Problem]) -> Condition | None:
    """The optional ``when`` condition; ALWAYS when absent, None when invalid."""
    f.seen.add(key)
    if key not in f.node or f.node[key] is None:
        return ALWAYS
    return parse_condition(f.node[key], f"{what}.{key}", problems, f.node.mark_of(key))


def duration_seconds(value: Any, mark: Mark, what: str, problems: list[Problem]) -> int | None:
    """``86400``, ``"24h"``, ``"30m"``, ``"7d"`` -> seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m and int(m.group(1)) > 0:
            return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    problems.append(Problem.at(mark, "schema.bad-duration", f"{what}: expected a positive duration like 86400, 30m, 24h or 7d"))
    return None


def check_unique(ids: list[tuple[str, Mark]], problems: list[Problem], what: str) -> None:
    seen: dict[str, Mark] = {}
    for ident, mark in ids:
        if ident in seen:
            first = seen[ident]
            problems.append(Problem.at(mark, "rule.duplicate-id", f"{what} {ident} is already defined at {first}"))
        else:
            seen[ident] = mark
