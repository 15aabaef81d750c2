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

import errno
import os
import posixpath
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Callable, Iterable, Mapping

from engine.plans.kinds import PARSERS
from engine.plans.kinds.common import Ctx
from engine.plans.model import PlanSet
from engine.plans.validate import validate_plan_set
from engine.yamlio import MarkedMap, NodeBudget, Problem, load_file, load_text, yaml_files

FOREIGN_FOLDERS = frozenset({"vouchers", "billing"})
FOREIGN_FILES = frozenset({"operator.yaml"})
YAML_SUFFIXES = (".yaml", ".yml")
PREFIX_SUFFIX = ".prefixes"


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
        if _ignored(path.name):
            continue
        if path.resolve() not in explicit and _foreign(path.resolve(), folders):
            continue
        display = _display(path, base)
        plan_set.files.append(display)
        _add_document(plan_set, load_file(path, problems, display=display), display, path, Ctx(problems), problems)
    return plan_set, problems


def parse_plan_texts(files: Mapping[str, str], budget: NodeBudget | None = None) -> tuple[PlanSet, list[Problem]]:
    """Parse a plan set given as ``{relative path: text}`` (an upload), as :func:`parse_plan_files` parses
    the same files in a folder, without touching the disk: ``prefix_file`` references are looked up in ``files``.
    ``budget`` caps the keys and values of all the files together."""
    problems: list[Problem] = []
    plan_set = PlanSet()
    texts = {_normal(name): text for name, text in files.items()}

    def read(path: PurePath) -> str:
        name = _normal(path.as_posix())
        if name not in texts:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return texts[name]

    for name in sorted(texts, key=PurePosixPath):
        rel = PurePosixPath(name)
        if rel.suffix not in YAML_SUFFIXES or _ignored(rel.name) or _foreign_part(rel):
            continue
        plan_set.files.append(name)
        _add_document(plan_set, load_text(texts[name], name, problems, budget), name, Path(name), Ctx(problems, read), problems)
    return plan_set, problems


def load_plan_texts(files: Mapping[str, str], budget: NodeBudget | None = None,
                    also: Callable[[PlanSet], list[Problem]] | None = None) -> tuple[PlanSet | None, list[Problem]]:
    """:func:`load_plan_set` for a plan set given as ``{relative path: text}``; ``also``: more checks of the parsed
    set, whose problems are listed with the others (who may own its plans: engine.plans.catalogue)."""
    plan_set, problems = parse_plan_texts(files, budget)
    problems.extend(validate_plan_set(plan_set))
    if also is not None:
        problems.extend(also(plan_set))
    problems = dedupe(problems)
    return (None if problems else plan_set), problems


def plan_files(folder: Path | str) -> dict[str, str]:
    """The files of a plan folder as an upload carries them: ``{relative posix path: text}`` of every plan
    file the loader reads there, and of the prefix files they may name."""
    base = Path(folder)
    out: dict[str, str] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = PurePosixPath(path.relative_to(base).as_posix())
        wanted = rel.suffix == PREFIX_SUFFIX or (rel.suffix in YAML_SUFFIXES and not _ignored(rel.name))
        if wanted and not _foreign_part(rel):
            out[rel.as_posix()] = path.read_text(encoding="utf-8")
    return out


def _add_document(plan_set: PlanSet, doc: Any, display: str, path: Path, ctx: Ctx, problems: list[Problem]) -> None:
    """Parse one loaded plan file (``display`` names it in problems) into its table of ``plan_set``."""
    if doc is None:
        return
    if not isinstance(doc, MarkedMap):
        problems.append(Problem(display, 1, 1, "schema.type", "a plan file is a mapping with a 'kind'"))
        return
    kind = doc.get("kind")
    if kind not in PARSERS:
        where = doc.mark_of("kind") if "kind" in doc else doc.mark
        code = "plan.unknown-kind" if "kind" in doc else "plan.missing-kind"
        problems.append(Problem.at(where, code, f"kind must be one of: {', '.join(sorted(PARSERS))}"))
        return
    parser, table_name = PARSERS[kind]
    obj = parser(doc, ctx, path)
    if not obj.id:
        return
    table = plan_set.table(table_name)
    if obj.id in table:
        first = table[obj.id].mark
        problems.append(Problem.at(doc.mark_of("id"), "id.duplicate", f"{obj.id} is already defined at {first}"))
        return
    table[obj.id] = obj


def _ignored(name: str) -> bool:
    # notes and drafts beside the plan files
    return name.startswith("_") or name.lower().startswith("readme")


def _foreign_part(rel: PurePath) -> bool:
    """Whether a path relative to a walked plan folder belongs to another loader (operator, voucher profiles)."""
    return rel.name in FOREIGN_FILES or any(part in FOREIGN_FOLDERS for part in rel.parts[:-1])


def _foreign(path: Path, folders: list[Path]) -> bool:
    for folder in folders:
        try:
            rel = path.relative_to(folder)
        except ValueError:
            continue
        if _foreign_part(rel):
            return True
    return False


def _normal(name: str) -> str:
    return posixpath.normpath(name)


def _display(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
