"""One adapter over the two backends, chosen from one table."""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Mapping, Protocol, TypeVar

from engine.eventrules.model import EventRuleSet


class RuleBackend(Protocol):
    name: str

    def matches(self, fact: Mapping[str, Any]) -> tuple[str, ...]: ...


def _compiled(ruleset: EventRuleSet) -> RuleBackend:
    from engine.eventrules.python_backend import PythonBackend

    return PythonBackend(ruleset)


def _durable(ruleset: EventRuleSet) -> RuleBackend:
    from engine.eventrules.durable_backend import DurableBackend

    return DurableBackend(ruleset)


# the names are the values of the ``event_rules_backend`` setting (engine.settings)
BACKENDS: dict[str, Callable[[EventRuleSet], RuleBackend]] = {"compiled": _compiled, "durable_rules": _durable}
# compiled is the default: the same decisions (tests/unit/eventrules/test_differential.py) at a far higher
# throughput (docs/BENCHMARKS.md, bench/bench_eventrules.py) and no native library in the call path
DEFAULT_BACKEND = "compiled"


def backend_name(backend: str) -> str:
    """``backend`` when it names a backend; ValueError naming the choices otherwise."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rule backend {backend!r} (use one of {', '.join(BACKENDS)})")
    return backend


def make_backend(ruleset: EventRuleSet, backend: str = DEFAULT_BACKEND) -> RuleBackend:
    return BACKENDS[backend_name(backend)](ruleset)


class Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=Identified)


class RuleEngine(Generic[R]):
    """A validated rule table behind one backend: its rules by id, and which of them a fact matches.

    The one mechanism barring, credit alerts (and any later table of rules) share; each subclass only says
    what a match means (the first decides, or every crossed threshold acts).
    """

    def __init__(self, rules: Iterable[R], ruleset: EventRuleSet, backend: str = DEFAULT_BACKEND) -> None:
        self._by_id: dict[str, R] = {r.id: r for r in rules}
        self._backend: RuleBackend = make_backend(ruleset, backend)

    @property
    def backend(self) -> str:
        return self._backend.name

    def matched(self, fact: Mapping[str, Any]) -> list[R]:
        """The rules the fact satisfies, in the table's order (one at most for a first-match table)."""
        return [self._by_id[rule_id] for rule_id in self._backend.matches(fact)]
