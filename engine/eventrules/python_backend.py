"""The ``compiled`` backend: the conditions compiled to Python closures, tried in order."""

from __future__ import annotations

from typing import Any, Mapping

from engine.eventrules.model import EventRuleSet


class PythonBackend:
    name = "compiled"

    def __init__(self, ruleset: EventRuleSet) -> None:
        self.ruleset = ruleset
        self._rules = tuple((r.id, r.condition.to_python()) for r in ruleset.rules)
        self._first = ruleset.mode == "first"

    def matches(self, fact: Mapping[str, Any]) -> tuple[str, ...]:
        if self._first:
            for rule_id, pred in self._rules:
                if pred(fact):
                    return (rule_id,)
            return ()
        return tuple(rule_id for rule_id, pred in self._rules if pred(fact))
