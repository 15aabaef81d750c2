"""The compiled form every event-rule kind shares: ordered rules with conditions.

A kind (barring, credit alerts, lifecycle, lockout) compiles its YAML into an
:class:`EventRuleSet`; a backend only answers "which rule ids match this
fact".  What a matched rule *means* stays with the kind, so both backends give
the same decisions by construction once they agree on the ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from engine.conditions import ALWAYS, Condition

# "first": the best-ordered matching rule wins (barring, lifecycle);
# "all": every matching rule fires (credit thresholds crossed together).
Mode = Literal["first", "all"]


@dataclass(frozen=True)
class EventRule:
    id: str
    condition: Condition


@dataclass(frozen=True)
class EventRuleSet:
    """Rules in evaluation order (the kind has already sorted them by priority)."""

    name: str
    mode: Mode
    rules: tuple[EventRule, ...]

    def to_plain(self) -> dict[str, Any]:
        """Stable intermediate form: the golden artifact and the content hash input."""
        return {
            "name": self.name,
            "mode": self.mode,
            "rules": [{"id": r.id, "when": r.condition.to_plain()} for r in self.rules],
        }

    def content_hash(self) -> str:
        text = json.dumps(self.to_plain(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def fields(self) -> frozenset[str]:
        return frozenset().union(*(r.condition.fields() for r in self.rules)) if self.rules else frozenset()


def is_always(cond: Condition) -> bool:
    return cond == ALWAYS
