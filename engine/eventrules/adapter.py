"""One adapter over the two backends, chosen from one table."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from engine.eventrules.model import EventRuleSet


class RuleBackend(Protocol):
    name: str

    def matches(self, fact: Mapping[str, Any]) -> tuple[str, ...]: ...


def _python(ruleset: EventRuleSet) -> RuleBackend:
    from engine.eventrules.python_backend import PythonBackend

    return PythonBackend(ruleset)


def _durable(ruleset: EventRuleSet) -> RuleBackend:
    from engine.eventrules.durable_backend import DurableBackend

    return DurableBackend(ruleset)


BACKENDS: dict[str, Callable[[EventRuleSet], RuleBackend]] = {"python": _python, "durable": _durable}
DEFAULT_BACKEND = "python"


def make_backend(ruleset: EventRuleSet, backend: str = DEFAULT_BACKEND) -> RuleBackend:
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown rule backend {backend!r} (use one of {', '.join(BACKENDS)})") from None
    return factory(ruleset)
