"""durable_rules backend, used as ARCHITECTURE.md measured it.

* The database is the truth: every evaluation posts one snapshot under a
  session id, reads what fired, and deletes the session state again.
* A catch-all rule (lowest priority) guarantees an action runs, so "nothing
  matched" is an answer and not a silent gap.
* Exceptions inside actions come back in the returned state, not raised:
  they are turned into :class:`RuleEngineError`.
* A ruleset cannot be unregistered: rulesets are named by a content hash
  and registered once per process, so reloading the same rules costs nothing.
* A ruleset holds at most ~1,024 live session ids: ids rotate over a small
  pool and each is deleted after use.
* One host per process, fed from one thread: a module lock serialises use.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, Mapping

from engine.conditions import DurableFields
from engine.eventrules.model import EventRuleSet

with warnings.catch_warnings():
    # durable 2.0.28 imports pkg_resources-era modules; pyproject ignores durable.* deprecations
    warnings.simplefilter("ignore", DeprecationWarning)
    from durable import engine as _durable_engine

_CATCH_ALL = "__no_rule__"
_MARK = "rb"  # every message carries rb=1; the catch-all matches on it
_SID_POOL = 64


class RuleEngineError(RuntimeError):
    """durable_rules failed to evaluate (an action raised, or nothing ran)."""


class _Host:
    """The single durable_rules host of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.host = _durable_engine.Host()
        self.registered: dict[str, "_Registered"] = {}
        self.hits: list[str] = []
        self.errors: list[BaseException] = []
        self.next_sid = 0

    def sid(self) -> str:
        self.next_sid = (self.next_sid + 1) % _SID_POOL
        return str(self.next_sid)


class _Registered:
    def __init__(self, name: str, fields: DurableFields) -> None:
        self.name = name
        self.fields = fields


_HOST: _Host | None = None
_HOST_LOCK = threading.Lock()


def _host() -> _Host:
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = _Host()
        return _HOST


def _action(host: _Host, rule_id: str) -> Any:
    def run(c: Any) -> None:
        try:
            host.hits.append(rule_id)
        except BaseException as exc:  # pragma: no cover - appending cannot fail; kept for the contract
            host.errors.append(exc)

    return run


_DNF_LIMIT = 256


def _dnf(cond: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Disjunctive normal form of a durable condition: a list of conjunctions of leaves."""
    if set(cond) == {"$or"}:
        return [term for part in cond["$or"] for term in _dnf(part)]
    if set(cond) == {"$and"}:
        terms: list[list[dict[str, Any]]] = [[]]
        for part in cond["$and"]:
            terms = [t + u for t in terms for u in _dnf(part)]
            if len(terms) > _DNF_LIMIT:
                raise RuleEngineError(f"condition too complex for durable_rules (more than {_DNF_LIMIT} alternatives)")
        return terms
    return [[cond]]


def _definition(ruleset: EventRuleSet, fields: DurableFields, host: _Host, split: bool) -> dict[str, Any]:
    """The durable ruleset.  ``split``: one durable rule per alternative of each condition.

    durable_rules refuses some nested $or/$and shapes (error 113); the same
    condition in disjunctive normal form, one durable rule per term with the
    rule's priority and action, means the same and always registers.
    """
    rules: dict[str, Any] = {}
    for pri, rule in enumerate(ruleset.rules, start=1):
        cond = rule.condition
        if not cond.fields():
            alternatives: list[dict[str, Any]] = [{_MARK: 1}]
        elif split:
            alternatives = [{"$and": [{_MARK: 1}, *term]} for term in _dnf(cond.to_durable(fields.key))]
        else:
            alternatives = [{"$and": [{_MARK: 1}, cond.to_durable(fields.key)]}]
        for alt_no, when in enumerate(alternatives):
            rules[f"r{pri}_{alt_no}"] = {"all": [{"m": when}], "pri": pri, "run": _action(host, rule.id)}
    rules["catch_all"] = {"all": [{"m": {_MARK: 1}}], "pri": len(ruleset.rules) + 1, "run": _action(host, _CATCH_ALL)}
    return rules


def _register(host: _Host, name: str, ruleset: EventRuleSet, fields: DurableFields) -> None:
    try:
        host.host.register_rulesets({name: _definition(ruleset, fields, host, split=False)})
    except Exception as exc:
        if "113" not in str(exc):
            raise RuleEngineError(f"durable_rules refused ruleset {ruleset.name}: {exc}") from exc
        host.host.register_rulesets({name: _definition(ruleset, fields, host, split=True)})


def _delete_session(host: _Host, ruleset_name: str, sid: str) -> None:
    """Drop the session state: the next event for this id starts from its database snapshot."""
    try:
        host.host.delete_state(ruleset_name, sid)
    except Exception as exc:
        # 309: no state for this sid (the post failed before creating it) -- nothing to clean up
        if "309" not in str(exc):
            raise RuleEngineError(f"could not delete rule session {sid} of {ruleset_name}: {exc}") from exc


class DurableBackend:
    name = "durable_rules"

    def __init__(self, ruleset: EventRuleSet) -> None:
        self.ruleset = ruleset
        self._host = _host()
        self.ruleset_name = "rb_" + ruleset.content_hash()[:24]
        with self._host.lock:
            reg = self._host.registered.get(self.ruleset_name)
            if reg is None:
                fields = DurableFields(ruleset.fields())
                _register(self._host, self.ruleset_name, ruleset, fields)
                reg = _Registered(self.ruleset_name, fields)
                self._host.registered[self.ruleset_name] = reg
        self._fields = reg.fields
        self._all = ruleset.mode == "all"

    def matches(self, fact: Mapping[str, Any]) -> tuple[str, ...]:
        host = self._host
        message = self._fields.message(fact)
        message[_MARK] = 1
        with host.lock:
            sid = host.sid()
            message["sid"] = sid
            host.hits.clear()
            host.errors.clear()
            try:
                if self._all:
                    state = host.host.assert_fact(self.ruleset_name, message)
                else:
                    state = host.host.post(self.ruleset_name, message)
            finally:
                _delete_session(host, self.ruleset_name, sid)
            hits = list(host.hits)
            errors = list(host.errors)
        if errors:
            raise RuleEngineError(f"rule action failed in {self.ruleset.name}: {errors[0]!r}")
        if isinstance(state, dict) and "exception" in state:
            raise RuleEngineError(f"rule action failed in {self.ruleset.name}: {state['exception']}")
        if not hits:
            raise RuleEngineError(f"no rule ran in {self.ruleset.name} (the catch-all must always run)")
        matched = [h for h in hits if h != _CATCH_ALL]
        if self._all:
            # fire order inside durable follows its agenda; report in rule order like the Python backend
            order = {r.id: i for i, r in enumerate(self.ruleset.rules)}
            return tuple(sorted(set(matched), key=order.__getitem__))
        return tuple(matched[:1])
