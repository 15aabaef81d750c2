"""YAML with line marks, for plan, rule and mapping files.

Every mapping and list loaded here remembers where it and each of its items
came from, so a validator can report ``file:line:col: code: message``.
Duplicate keys are problems, not silent overwrites.  Parsing never stops at
the first problem a validator can report: callers collect :class:`Problem`
objects and print them all.

Line and column numbers are 1-based, as editors show them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml


@dataclass(frozen=True, order=True)
class Mark:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Problem:
    """One validation error; ``code`` is stable (tests assert on it), ``message`` is for people."""

    file: str
    line: int
    col: int
    code: str
    message: str

    @classmethod
    def at(cls, mark: Mark, code: str, message: str) -> "Problem":
        return cls(mark.file, mark.line, mark.col, code, message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.code}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "col": self.col, "code": self.code, "message": self.message}


class MarkedMap(dict):
    """A dict that knows where it, each key and each value start."""

    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def mark_of(self, key: Any) -> Mark:
        return self.value_marks.get(key) or self.key_marks.get(key) or self.mark

    def key_mark(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)


class MarkedList(list):
    mark: Mark
    item_marks: list[Mark]

    def mark_of(self, index: int) -> Mark:
        return self.item_marks[index] if 0 <= index < len(self.item_marks) else self.mark


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self._scalar = yaml.SafeLoader.__new__(yaml.SafeLoader)  # only for construct_scalar/resolvers
        yaml.SafeLoader.__init__(self._scalar, "")

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            out = MarkedMap()
            out.mark = _mark(self.file, node)
            out.key_marks = {}
            out.value_marks = {}
            # merge keys (<<) are not part of our language: keep files explicit
            for key_node, value_node in node.value:
                key = self.build(key_node)
                if isinstance(key, (dict, list)):
                    self.problems.append(Problem.at(_mark(self.file, key_node), "yaml.bad-key", "a key must be a plain value"))
                    continue
                if key in out:
                    first = out.key_marks[key]
                    self.problems.append(
                        Problem.at(
                            _mark(self.file, key_node),
                            "yaml.duplicate-key",
                            f"duplicate key {key!r} (first defined at line {first.line})",
                        )
                    )
                    continue
                out[key] = self.build(value_node)
                out.key_marks[key] = _mark(self.file, key_node)
                out.value_marks[key] = _mark(self.file, value_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            seq = MarkedList(self.build(child) for child in node.value)
            seq.mark = _mark(self.file, node)
            seq.item_marks = [_mark(self.file, child) for child in node.value]
            return seq
        # scalars: resolve with the safe loader's constructors (ints, bools, dates, null)
        constructor = self._scalar.yaml_constructors.get(node.tag)
        if constructor is None:
            self.problems.append(Problem.at(_mark(self.file, node), "yaml.bad-tag", f"unsupported tag {node.tag}"))
            return None
        try:
            return constructor(self._scalar, node)
        except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. an impossible date such as 2026-13-01
            self.problems.append(Problem.at(_mark(self.file, node), "yaml.bad-value", str(exc).splitlines()[0]))
            return None


def load_text(text: str, file: str, problems: list[Problem]) -> Any:
    """Parse one YAML document; syntax errors and duplicate keys go to ``problems``.

    Returns ``None`` when the text cannot be parsed at all.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(file, line, col, "yaml.syntax", exc.problem or str(exc)))
        return None
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        problems.append(Problem(file, 1, 1, "yaml.syntax", str(exc)))
        return None
    if node is None:
        return None
    return _Builder(file, problems).build(node)


def load_file(path: Path | str, problems: list[Problem], display: str | None = None) -> Any:
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, 1, "file.encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        problems.append(Problem(name, 1, 1, "file.unreadable", exc.strerror or str(exc)))
        return None
    return load_text(text, name, problems)


def plain(value: Any) -> Any:
    """Drop the marks: plain dicts and lists (for hashing, JSON, comparison)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def yaml_files(paths: Iterable[Path | str]) -> list[Path]:
    """Expand files and folders into a sorted list of ``*.yaml``/``*.yml`` files."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file()))
        else:
            found.append(p)
    return found


def format_problems(problems: Iterable[Problem], fmt: str = "text") -> str:
    items = sorted(problems)
    if fmt == "json":
        return json.dumps([p.as_dict() for p in items], indent=2)
    return "\n".join(str(p) for p in items)


class Fields:
    """Small schema checker for one mapping: unknown, missing and wrongly typed fields.

    Usage::

        f = Fields(node, "rate", problems)
        name = f.required("name", str)
        unit = f.optional("unit", str, default="second")
        f.done()   # reports unknown fields
    """

    _TYPE_NAMES = {str: "text", int: "integer", bool: "true/false", list: "list", dict: "mapping"}

    def __init__(self, node: Any, what: str, problems: list[Problem], fallback: Mark | None = None) -> None:
        self.what = what
        self.problems = problems
        self.ok = isinstance(node, MarkedMap)
        self.node: MarkedMap = node if self.ok else MarkedMap()
        if not self.ok:
            self.node.mark = getattr(node, "mark", fallback or Mark("?", 1, 1))
            self.node.key_marks, self.node.value_marks = {}, {}
            problems.append(Problem.at(self.node.mark, "schema.type", f"{what} must be a mapping"))
        self.seen: set[str] = set()

    @property
    def mark(self) -> Mark:
        return self.node.mark

    def _get(self, key: str, types: type | tuple[type, ...], required: bool, default: Any) -> Any:
        self.seen.add(key)
        if key not in self.node or self.node[key] is None:
            if required:
                self.problems.append(Problem.at(self.node.mark, "schema.missing", f"{self.what}: missing field '{key}'"))
            return default
        value = self.node[key]
        types_t = types if isinstance(types, tuple) else (types,)
        # bool is an int in Python; keep them apart
        bad = not isinstance(value, types_t) or (isinstance(value, bool) and bool not in types_t)
        if bad:
            want = " or ".join(self._TYPE_NAMES.get(t, t.__name__) for t in types_t)
            self.problems.append(
                Problem.at(self.node.mark_of(key), "schema.type", f"{self.what}.{key}: expected {want}, got {type(value).__name__}")
            )
            return default
        return value

    def required(self, key: str, types: type | tuple[type, ...]) -> Any:
        return self._get(key, types, True, None)

    def optional(self, key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        return self._get(key, types, False, default)

    def done(self) -> None:
        for key in self.node:
            if key not in self.seen:
                self.problems.append(Problem.at(self.node.key_mark(key), "schema.unknown-field", f"{self.what}: unknown field '{key}'"))
