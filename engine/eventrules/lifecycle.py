"""Lifecycles of vouchers and voucher batches, declared as data.

A file (``kind: lifecycle``) names an entity, its states, its initial state
and its transitions ``{event, from: [states], to: state | same, when?,
requires_privilege?, priority?, reason?}``.  Changing the file changes what
is allowed; no code knows the states.

Every transition compiles into up to three rules of one first-match table,
so the engine itself also says *why* a move is refused:

1. allowed      -- state in ``from``, event, ``when`` holds, privilege held
2. no privilege -- state in ``from``, event, ``when`` holds
3. guard failed -- state in ``from``, event
4. catch-all    -- nothing matched: the event is not allowed from this state
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from engine.conditions import ALWAYS, Comparison, Condition, all_of, one_of, parse_condition
from engine.errors import FailedPrecondition, PermissionDenied
from engine.eventrules.adapter import DEFAULT_BACKEND, RuleBackend, backend_name, make_backend
from engine.eventrules.analysis import RuleEntry, check_table, ordered
from engine.eventrules.common import NAME_RE
from engine.eventrules.model import EventRule, EventRuleSet
from engine.yamlio import Fields, Mark, MarkedList, Problem

SAME = "same"
_PRIVILEGE_RE = re.compile(r"^[a-z][a-z0-9_.:-]*$")


def privilege_key(name: str) -> str:
    """Privilege names may hold dots (voucher.recover); the fact key may not."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)

# TransitionDecision.code values (stable; servicers branch on them)
ALLOWED = "OK"
INVALID_TRANSITION = "INVALID_TRANSITION"
CONDITION_NOT_MET = "CONDITION_NOT_MET"
PRIVILEGE_REQUIRED = "PRIVILEGE_REQUIRED"
UNKNOWN_STATE = "UNKNOWN_STATE"
UNKNOWN_ENTITY = "UNKNOWN_ENTITY"


@dataclass(frozen=True)
class TransitionDecision:
    allowed: bool
    to_state: str | None  # the new state when allowed
    reason: str  # for people; names the states on refusal
    code: str = ALLOWED  # OK | INVALID_TRANSITION | CONDITION_NOT_MET | PRIVILEGE_REQUIRED | UNKNOWN_STATE | UNKNOWN_ENTITY
    transition_id: str | None = None  # "<event>:<index>" of the transition that decided

    def raise_if_refused(self, subject: str = "") -> "TransitionDecision":
        """FailedPrecondition (PermissionDenied for a missing privilege) when refused; self otherwise."""
        if self.allowed:
            return self
        if self.code == PRIVILEGE_REQUIRED:
            raise PermissionDenied(self.reason)
        raise FailedPrecondition(self.code, self.reason, subject)


@dataclass(frozen=True)
class Transition:
    id: str
    event: str
    from_states: tuple[str, ...]
    to: str  # a state, or "same"
    condition: Condition
    requires_privilege: str | None
    priority: int
    reason: str
    mark: Mark
    order: int = 0

    def base(self) -> Condition:
        return all_of(Comparison("event", "eq", self.event), one_of("state", self.from_states))


@dataclass(frozen=True)
class LifecycleModel:
    entity: str
    initial: str
    states: tuple[str, ...]
    transitions: tuple[Transition, ...]  # evaluation order
    file: str = ""

    def ruleset(self) -> EventRuleSet:
        allowed, no_priv, guard = [], [], []
        for t in self.transitions:
            with_when = all_of(t.base(), t.condition)
            if t.requires_privilege:
                allowed.append(EventRule(f"allow:{t.id}", all_of(with_when, Comparison(f"privilege.{privilege_key(t.requires_privilege)}", "eq", True))))
                no_priv.append(EventRule(f"privilege:{t.id}", with_when))
            else:
                allowed.append(EventRule(f"allow:{t.id}", with_when))
            if t.condition != ALWAYS:
                guard.append(EventRule(f"guard:{t.id}", t.base()))
        return EventRuleSet(f"lifecycle:{self.entity}", "first", tuple(allowed + no_priv + guard))

    def events(self) -> list[str]:
        return sorted({t.event for t in self.transitions})


def _states(value: Any, mark: Mark, what: str, problems: list[Problem]) -> list[str] | None:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(s, str) and NAME_RE.match(s) for s in items):
        problems.append(Problem.at(mark, "schema.type", f"{what}: expected a state name or a list of state names (lower_snake)"))
        return None
    return list(items)


def parse_lifecycle_file(node: Any, problems: list[Problem]) -> LifecycleModel | None:
    start = len(problems)
    f = Fields(node, "lifecycle", problems)
    f.optional("kind", str)
    f.optional("description", str)
    entity = f.required("entity", str)
    initial = f.required("initial", str)
    states = f.required("states", list)
    items = f.required("transitions", list)
    f.done()
    state_list = _states(states, f.node.mark_of("states"), "states", problems) if states is not None else None
    known = set(state_list or [])
    if state_list:
        for i, s in enumerate(state_list):
            if state_list.index(s) != i:
                problems.append(Problem.at(states.mark_of(i), "lifecycle.duplicate-state", f"state {s} is listed twice"))
    if initial is not None and state_list is not None and initial not in known:
        problems.append(Problem.at(f.node.mark_of("initial"), "lifecycle.unknown-state", f"initial state {initial} is not in states"))
    transitions: list[Transition] = []
    for i, item in enumerate(items or []):
        mark = items.mark_of(i) if isinstance(items, MarkedList) else f.mark
        tf = Fields(item, f"transitions[{i}]", problems, fallback=mark)
        event = tf.required("event", str)
        if event is not None and not NAME_RE.match(event):
            problems.append(Problem.at(tf.node.mark_of("event"), "lifecycle.bad-event", f"transitions[{i}]: event {event!r} must be lower_snake"))
            event = None
        what = f"transition {event or i}"
        raw_from = tf.required("from", (list, str))
        from_states = _states(raw_from, tf.node.mark_of("from"), f"{what}.from", problems) if raw_from is not None else None
        to = tf.required("to", str)
        pri = tf.optional("priority", int, default=0)
        privilege = tf.optional("requires_privilege", str)
        if privilege is not None and not _PRIVILEGE_RE.match(privilege):
            problems.append(
                Problem.at(tf.node.mark_of("requires_privilege"), "lifecycle.bad-privilege", f"{what}: privilege {privilege!r} must be lower case")
            )
        reason = tf.optional("reason", str, default="")
        tf.seen.add("when")
        cond: Condition | None = ALWAYS
        if tf.node.get("when") is not None:
            cond = parse_condition(tf.node["when"], f"{what}.when", problems, tf.node.mark_of("when"))
        tf.done()
        if state_list is not None:
            for s in from_states or []:
                if s not in known:
                    problems.append(Problem.at(tf.node.mark_of("from"), "lifecycle.unknown-state", f"{what}: from-state {s} is not in states"))
            if to is not None and to != SAME and to not in known:
                problems.append(Problem.at(tf.node.mark_of("to"), "lifecycle.unknown-state", f"{what}: to-state {to} is not in states"))
        if event and from_states and to and cond is not None:
            transitions.append(Transition(f"{event}:{i}", event, tuple(from_states), to, cond, privilege, pri, reason, tf.mark, i))
    if len(problems) != start or entity is None or initial is None or state_list is None:
        return None
    entries = [RuleEntry(t.id, t.priority, all_of(t.base(), t.condition), t.mark, t.order) for t in transitions]
    check_table(entries, problems, first_match=True, what="transition")
    state_marks = [states.mark_of(i) if isinstance(states, MarkedList) else f.mark for i in range(len(state_list))]
    _check_reachable(initial, state_list, transitions, state_marks, problems)
    by_id = {t.id: t for t in transitions}
    return LifecycleModel(entity, initial, tuple(state_list), tuple(by_id[e.id] for e in ordered(entries)), f.mark.file)


def _check_reachable(initial: str, states: list[str], transitions: list[Transition], marks: list[Mark], problems: list[Problem]) -> None:
    reached = {initial}
    frontier = [initial]
    while frontier:
        s = frontier.pop()
        for t in transitions:
            if s in t.from_states and t.to != SAME and t.to not in reached:
                reached.add(t.to)
                frontier.append(t.to)
    for s, mark in zip(states, marks):
        if s not in reached:
            problems.append(Problem.at(mark, "lifecycle.unreachable-state", f"state {s} cannot be reached from {initial}"))


class Lifecycle:
    """All lifecycle models (one per entity kind), each behind a backend."""

    def __init__(self, models: Iterable[LifecycleModel], backend: str = DEFAULT_BACKEND) -> None:
        self.models = {m.entity: m for m in models}
        self.backend = backend_name(backend)
        self._backends: dict[str, RuleBackend] = {e: make_backend(m.ruleset(), backend) for e, m in self.models.items()}
        self._by_id = {(e, t.id): t for e, m in self.models.items() for t in m.transitions}

    def decide(
        self,
        entity_kind: str,
        current_state: str,
        event: str,
        facts: Mapping[str, Any] | None = None,
        privileges: Iterable[str] = (),
    ) -> TransitionDecision:
        model = self.models.get(entity_kind)
        if model is None:
            return TransitionDecision(False, None, f"no lifecycle is declared for {entity_kind}", UNKNOWN_ENTITY)
        if current_state not in model.states:
            return TransitionDecision(False, None, f"{entity_kind} state {current_state} is not a declared state", UNKNOWN_STATE)
        fact: dict[str, Any] = dict(facts or {})
        fact["state"] = current_state
        fact["event"] = event
        held = set(privileges) | set(fact.pop("privileges", None) or ())
        fact["privilege"] = {privilege_key(p): True for p in held}
        hit = self._backends[entity_kind].matches(fact)
        if not hit:
            allowed_from = sorted({s for t in model.transitions if t.event == event for s in t.from_states})
            where = f"only from {', '.join(allowed_from)}" if allowed_from else "it is not a known event"
            return TransitionDecision(
                False, None, f"cannot {event} a {entity_kind} in state {current_state} ({where})", INVALID_TRANSITION
            )
        kind, _, tid = hit[0].partition(":")
        t = self._by_id[(entity_kind, tid)]
        to_state = current_state if t.to == SAME else t.to
        if kind == "allow":
            return TransitionDecision(True, to_state, f"{event}: {current_state} -> {to_state}", ALLOWED, t.id)
        if kind == "privilege":
            return TransitionDecision(
                False, None, f"{event} of a {entity_kind} in state {current_state} requires privilege {t.requires_privilege}", PRIVILEGE_REQUIRED, t.id
            )
        because = t.reason or f"condition not met: {t.condition.describe()}"
        return TransitionDecision(
            False, None, f"cannot {event} a {entity_kind} in state {current_state}: {because}", CONDITION_NOT_MET, t.id
        )

    def allowed_events(self, entity_kind: str, current_state: str) -> list[str]:
        """Events declared from this state (ignoring conditions) -- for UIs and docs."""
        model = self.models[entity_kind]
        return sorted({t.event for t in model.transitions if current_state in t.from_states})
