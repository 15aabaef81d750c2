"""Load every rule file under rules/, dispatching on ``kind`` from one table.

All problems of all files are collected; nothing reaches an engine when any
file is invalid (callers check ``problems`` first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.eventrules.adapter import DEFAULT_BACKEND
from engine.eventrules.alerts import AlertTable, CreditAlerts, Threshold, build_alert_table, parse_alert_file
from engine.eventrules.barring import Barring, BarringRule, BarringTable, build_barring_table, parse_barring_file, values_of
from engine.eventrules.lifecycle import Lifecycle, LifecycleModel, parse_lifecycle_file
from engine.eventrules.lockout import DEFAULT_LOCKOUT, LockoutPolicy, parse_lockout_file
from engine.yamlio import MarkedMap, Problem, load_file, yaml_files


# the folders of rules/ that hold event-rule files (rules/mediation belongs to mediation)
EVENT_RULE_DIRS = ("barring", "alerts", "lifecycle")


class RuleFilesInvalid(Exception):
    """Rule files have problems; ``problems`` lists every one (file:line:col: code: message)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in rule files:\n" + "\n".join(str(p) for p in sorted(problems)))
        self.problems = sorted(problems)


@dataclass
class _Parsed:
    barring: list[BarringRule] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    lifecycles: list[LifecycleModel] = field(default_factory=list)
    lockouts: list[tuple[LockoutPolicy, Any]] = field(default_factory=list)


def _barring(node: Any, problems: list[Problem], into: _Parsed) -> None:
    into.barring.extend(parse_barring_file(node, problems))


def _alerts(node: Any, problems: list[Problem], into: _Parsed) -> None:
    into.thresholds.extend(parse_alert_file(node, problems))


def _lifecycle(node: Any, problems: list[Problem], into: _Parsed) -> None:
    model = parse_lifecycle_file(node, problems)
    if model is not None:
        into.lifecycles.append(model)


def _lockout(node: Any, problems: list[Problem], into: _Parsed) -> None:
    policy = parse_lockout_file(node, problems)
    if policy is not None:
        into.lockouts.append((policy, node))


RULE_KINDS: dict[str, Callable[[Any, list[Problem], _Parsed], None]] = {
    "barring": _barring,
    "credit_alerts": _alerts,
    "lifecycle": _lifecycle,
    "recharge_lockout": _lockout,
}


@dataclass(frozen=True)
class RuleBook:
    """Every validated rule table; build engines from it with a chosen backend."""

    barring_table: BarringTable
    alert_table: AlertTable
    lifecycle_models: tuple[LifecycleModel, ...]
    lockout_policy: LockoutPolicy
    # False when no recharge_lockout file was loaded (lockout_policy is then the built-in default): a
    # service that needs the operator's own policy refuses to start rather than run on the default
    lockout_declared: bool = False

    def barring(self, backend: str = DEFAULT_BACKEND) -> Barring:
        return Barring(self.barring_table, backend)

    def credit_alerts(self, backend: str = DEFAULT_BACKEND) -> CreditAlerts:
        return CreditAlerts(self.alert_table, backend)

    def lifecycle(self, backend: str = DEFAULT_BACKEND) -> Lifecycle:
        return Lifecycle(self.lifecycle_models, backend)

    def dangling_references(
        self,
        destination_groups: Iterable[str],
        plan_ids: Iterable[str] | None = None,
        tenants: Iterable[str] | None = None,
    ) -> list[Problem]:
        """Rules naming destination groups (and, when given, plans and tenants) that plans/ does not define.

        The hook the plan loader calls with the ids it knows; ``None`` skips that check.
        """
        checks: list[tuple[str, set[str] | None, str, str]] = [
            ("destination_group", set(destination_groups), "rule.unknown-destination-group", "destination group"),
            ("plan_id", None if plan_ids is None else set(plan_ids), "rule.unknown-plan", "tariff plan"),
            ("tenant", None if tenants is None else set(tenants), "rule.unknown-tenant", "tenant"),
        ]
        problems: list[Problem] = []
        alert_conditions = [(t.id, t.full_condition(), t.mark) for t in self.alert_table.thresholds]
        for path, known, code, noun in checks:
            if known is None:
                continue
            refs = [(v, m, f"barring rule {rid}") for v, m, rid in self.barring_table.references(path)]
            refs += [(v, m, f"threshold {tid}") for tid, cond, m in alert_conditions for v in values_of(cond, path)]
            problems.extend(
                Problem.at(mark, code, f"{who}: {noun} {value} is not defined in plans/") for value, mark, who in refs if value not in known
            )
        return sorted(problems)


def load_rules(paths: Iterable[Path | str], problems: list[Problem]) -> RuleBook:
    """Load rule files/folders; every problem goes to ``problems`` (the book is only usable when it stays empty)."""
    parsed = _Parsed()
    for path in yaml_files(paths):
        node = load_file(path, problems)
        if node is None:
            continue
        if not isinstance(node, MarkedMap):
            problems.append(Problem(str(path), 1, 1, "schema.type", "a rule file must be a mapping"))
            continue
        kind = node.get("kind")
        handler = RULE_KINDS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            problems.append(
                Problem.at(node.mark_of("kind"), "rule.unknown-kind", f"kind must be one of {', '.join(RULE_KINDS)} (got {kind!r})")
            )
            continue
        handler(node, problems, parsed)
    seen_entities: dict[str, LifecycleModel] = {}
    for model in parsed.lifecycles:
        if model.entity in seen_entities:
            problems.append(Problem(model.file, 1, 1, "lifecycle.duplicate-entity", f"lifecycle for {model.entity} is declared twice"))
        seen_entities[model.entity] = model
    for _, node in parsed.lockouts[1:]:
        problems.append(Problem.at(node.mark, "lockout.duplicate", "only one recharge_lockout file is allowed"))
    return RuleBook(
        barring_table=build_barring_table(parsed.barring, problems),
        alert_table=build_alert_table(parsed.thresholds, problems),
        lifecycle_models=tuple(seen_entities.values()),
        lockout_policy=parsed.lockouts[0][0] if parsed.lockouts else DEFAULT_LOCKOUT,
        lockout_declared=bool(parsed.lockouts),
    )


def load_lifecycle(paths: Iterable[Path | str], backend: str = DEFAULT_BACKEND) -> Lifecycle:
    """The lifecycles of lifecycle files or folders (e.g. ``rules/lifecycle``); raises RuleFilesInvalid on problems."""
    problems: list[Problem] = []
    book = load_rules(paths, problems)
    if problems:
        raise RuleFilesInvalid(problems)
    return book.lifecycle(backend)


def load_rule_book(rules_root: Path | str) -> RuleBook:
    """Load rules/barring, rules/alerts and rules/lifecycle under ``rules_root``; raise RuleFilesInvalid on any problem."""
    root = Path(rules_root)
    problems: list[Problem] = []
    book = load_rules([root / d for d in EVENT_RULE_DIRS if (root / d).is_dir()], problems)
    if problems:
        raise RuleFilesInvalid(problems)
    return book
