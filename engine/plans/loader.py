"""Load plan files into a :class:`PlanSet`, collecting every problem.

A plan file is one YAML mapping with a ``kind`` (see :mod:`engine.plans.kinds`).
Files named ``README*`` or starting with ``_`` are ignored; other YAML files
without a known kind are errors (a typo must not silently drop a tariff).

``plans/`` also holds documents other loaders read: the operator's tenants
(``operator.yaml``), voucher profiles (``vouchers/``) and billing profiles (``billing/``).  When walking a
folder, the plan loader skips those names; naming such a file explicitly still
reports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from engine.plans.kinds import PARSERS
from engine.plans.kinds.common import Ctx
from engine.plans.model import PlanSet
from engine.plans.validate import validate_plan_set
from engine.yamlio import MarkedMap, Problem, load_file, yaml_files

FOREIGN_FOLDERS = frozenset({"vouchers", "billing"})
FOREIGN_FILES = frozenset({"operator.yaml"})


def load_plan_set(paths: Iterable[Path | str], root: Path | str | None = None) -> tuple[PlanSet | None, list[Problem]]:
    """Load and validate plan folders/files.

    Returns ``(plan_set, [])`` when valid, ``(None, problems)`` otherwise: an
    invalid plan set never reaches the compiler.  File names in problems are
    shown relative to ``root`` (default: the current directory when possible).
    """
    plan_set, problems = parse_plan_files(paths, root)
    problems.extend(validate_plan_set(plan_set))
    problems = dedupe(problems)
    return (None if problems else plan_set), problems


def dedupe(problems: list[Problem]) -> list[Problem]:
    """Identical problems once (a shared rate table row is checked for every plan using it), sorted."""
    return sorted(set(problems))


def parse_plan_files(paths: Iterable[Path | str], root: Path | str | None = None) -> tuple[PlanSet, list[Problem]]:
    """Parse only (no cross-file checks): the PlanSet holds whatever could be read."""
    problems: list[Problem] = []
    plan_set = PlanSet()
    base = Path(root) if root is not None else Path.cwd()
    path_list = [Path(p) for p in paths]
    for p in path_list:
        if not p.exists():
            problems.append(Problem(str(p), 1, 1, "file.missing", "no such file or folder"))
    explicit = {p.resolve() for p in path_list if p.is_file()}
    folders = [p.resolve() for p in path_list if p.is_dir()]
    for path in yaml_files(p for p in path_list if p.exists()):
        if path.name.startswith("_") or path.name.lower().startswith("readme"):
            continue
        if path.resolve() not in explicit and _foreign(path.resolve(), folders):
            continue
        display = _display(path, base)
        plan_set.files.append(display)
        doc = load_file(path, problems, display=display)
        if doc is None:
            continue
        if not isinstance(doc, MarkedMap):
            problems.append(Problem(display, 1, 1, "schema.type", "a plan file is a mapping with a 'kind'"))
            continue
        kind = doc.get("kind")
        if kind not in PARSERS:
            where = doc.mark_of("kind") if "kind" in doc else doc.mark
            code = "plan.unknown-kind" if "kind" in doc else "plan.missing-kind"
            problems.append(Problem.at(where, code, f"kind must be one of: {', '.join(sorted(PARSERS))}"))
            continue
        parser, table_name = PARSERS[kind]
        obj = parser(doc, Ctx(problems), path)
        if not obj.id:
            continue
        table = plan_set.table(table_name)
        if obj.id in table:
            first = table[obj.id].mark
            problems.append(Problem.at(doc.mark_of("id"), "id.duplicate", f"{obj.id} is already defined at {first}"))
            continue
        table[obj.id] = obj
    return plan_set, problems


def _foreign(path: Path, folders: list[Path]) -> bool:
    for folder in folders:
        try:
            rel = path.relative_to(folder)
        except ValueError:
            continue
        if rel.name in FOREIGN_FILES or any(part in FOREIGN_FOLDERS for part in rel.parts[:-1]):
            return True
    return False


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
