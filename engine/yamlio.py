"""YAML with line marks, for plan, rule and mapping files.

Every mapping and list loaded here remembers where it and each of its items
came from, so a validator can report ``file:line:col: code: message``.
Duplicate keys are problems, not silent overwrites.  Parsing never stops at
the first problem a validator can report: callers collect :class:`Problem`
objects and print them all.

Line and column numbers are 1-based, as editors show them.

Bounds (every file this loader reads: plans, rules, layouts, voucher profiles,
settings): nesting deeper than :data:`MAX_DEPTH` levels and aliases (``*name``)
are refused with a problem; a :class:`NodeBudget` caps the values a set of
files may hold (an uploaded plan set); the current call's deadline and
cancellation are checked while parsing (:mod:`engine.cancellation`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from engine.cancellation import checkpoint
from engine.errors import MAX_ECHO, clip, shown

MAX_PROBLEM_MESSAGE = 400


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

    def __post_init__(self) -> None:
        # a problem may echo what a file holds (a key, a value, a path): never unboundedly
        object.__setattr__(self, "file", clip(self.file, MAX_ECHO * 2))
        object.__setattr__(self, "message", clip(self.message, MAX_PROBLEM_MESSAGE))

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


# Fixed bounds of one document.  Deeper nesting than any plan, rule or settings file needs is refused (a
# deep document is a way to exhaust a parser's stack); aliases are refused altogether: the plan and rule
# languages share values by id (a rate table, a destination group), and an alias that names an alias that
# names an alias ("billion laughs") multiplies a few hundred bytes into billions of values.
MAX_DEPTH = 64
CHECK_EVERY = 1024   # events between two checkpoints of the current call (its deadline, its cancellation)
# libyaml's parser when PyYAML has it (4x faster, the same events and marks), else PyYAML's own
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The longest number a file may write (digits, sign, point, exponent, underscores); longer is refused before it is
# built.  A price, a count or a size has at most a few dozen characters.
MAX_NUMBER_CHARS = 100
_INT, _FLOAT, _STR = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:str"
_NUMBER_TAGS = frozenset({_INT, _FLOAT})
# the scalars a file may hold; their constructors cost time in proportion to the scalar's length (numbers
# within MAX_NUMBER_CHARS)
_SCALAR_TAGS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", _INT, _FLOAT, "tag:yaml.org,2002:binary",
                          "tag:yaml.org,2002:timestamp", _STR})


class NodeBudget:
    """How many values (keys, scalars, lists, mappings) the documents loaded with this budget may hold
    together; ``used`` counts them (a work counter: loading does work in proportion to it).
    ``what`` names the limit in the problem (for example the setting that sets it)."""

    def __init__(self, limit: int | None = None, what: str = "") -> None:
        self.limit = limit
        self.what = what
        self.used = 0


def _at(file: str, mark: Any) -> Mark:
    return Mark(file, mark.line + 1, mark.column + 1)


class _Refused(Exception):
    """The document cannot be loaded within our bounds; the problem has been recorded."""


class _Open:
    """A mapping or list being filled, with the key waiting for its value."""

    __slots__ = ("value", "key", "key_mark", "has_key", "skip")

    def __init__(self, value: MarkedMap | MarkedList) -> None:
        self.value = value
        self.key: Any = None
        self.key_mark = Mark("", 0, 0)
        self.has_key = False
        self.skip = False


class _Builder:
    """Builds MarkedMap/MarkedList/scalars from the parser's events, without recursion.

    Built from events rather than from ``yaml.compose``'s node graph so that every bound is checked before
    the work it bounds is done: nesting depth, aliases, the number of values, the call's deadline."""

    def __init__(self, loader: Any, file: str, problems: list[Problem], budget: NodeBudget) -> None:
        self.loader = loader
        self.file = file
        self.problems = problems
        self.budget = budget
        self.stack: list[_Open] = []
        self.root: Any = None
        self.refused = False

    def run(self) -> Any:
        loader, events = self.loader, 0
        document_seen = False
        while loader.check_event():
            event = loader.get_event()
            events += 1
            if events % CHECK_EVERY == 0:
                checkpoint()
            if isinstance(event, yaml.DocumentStartEvent):
                if document_seen:
                    self._refuse(event.start_mark, "yaml.syntax", "expected a single document in the file, but found another document")
                document_seen = True
            elif isinstance(event, yaml.ScalarEvent):
                self._count(event.start_mark)
                self._add(self._scalar(event), _at(self.file, event.start_mark))
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self._start(event)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                self.stack.pop()  # the finished collection was put in place when it opened
            elif isinstance(event, yaml.AliasEvent):
                # every alias is reported (not only the first), then the document is refused
                self.problems.append(Problem.at(_at(self.file, event.start_mark), "yaml.alias",
                                                f"aliases (*{event.anchor}) are not allowed: write the value out, or share it by "
                                                "id (a rate table, a destination group)"))
                self.refused = True
                self._add(None, _at(self.file, event.start_mark))
        return None if self.refused else self.root

    def _refuse(self, mark: Any, code: str, message: str) -> None:
        self.problems.append(Problem.at(_at(self.file, mark), code, message))
        raise _Refused()

    def _count(self, mark: Any) -> None:
        budget = self.budget
        budget.used += 1
        if budget.limit is not None and budget.used > budget.limit:
            self._refuse(mark, "limit.values", f"more than {budget.limit} keys and values{budget.what}")

    def _start(self, event: Any) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self._refuse(event.start_mark, "yaml.too-deep", f"nested more than {MAX_DEPTH} levels deep")
        self._count(event.start_mark)
        is_map = isinstance(event, yaml.MappingStartEvent)
        tag = event.tag
        if tag is not None and tag != "!" and tag != ("tag:yaml.org,2002:map" if is_map else "tag:yaml.org,2002:seq"):
            # a mapping or list is always plain data here: a tag asking for anything else is refused
            self.problems.append(Problem.at(_at(self.file, event.start_mark), "yaml.bad-tag", f"unsupported tag {tag}"))
        out: MarkedMap | MarkedList
        if is_map:
            out = MarkedMap()
            out.key_marks, out.value_marks = {}, {}
        else:
            out = MarkedList()
            out.item_marks = []
        out.mark = _at(self.file, event.start_mark)
        # a collection's place in its parent is decided now (its key, its index); it is filled afterwards
        self._add(out, out.mark)
        self.stack.append(_Open(out))

    def _add(self, value: Any, where: Mark) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        parent = top.value
        if isinstance(parent, MarkedList):
            parent.append(value)
            parent.item_marks.append(where)
            return
        if not top.has_key:
            top.has_key, top.key, top.key_mark, top.skip = True, value, where, False
            if isinstance(value, (dict, list)):
                self.problems.append(Problem.at(where, "yaml.bad-key", "a key must be a plain value"))
                top.skip = True
            elif value in parent:
                first = parent.key_marks[value]
                self.problems.append(Problem.at(where, "yaml.duplicate-key",
                                                f"duplicate key {shown(value)} (first defined at line {first.line})"))
                top.skip = True
            return
        top.has_key = False
        if not top.skip:
            parent[top.key] = value
            parent.key_marks[top.key] = top.key_mark
            parent.value_marks[top.key] = where

    def _scalar(self, event: Any) -> Any:
        loader = self.loader
        tag, text = event.tag, event.value
        mark = _at(self.file, event.start_mark)
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, text, event.implicit)
            if tag in _NUMBER_TAGS and ":" in text:
                # YAML 1.1's base-60 forms (18:00 = 1080) are text here, as YAML 1.2 reads them: a clock time
                # such as 18:00 is meant as written, and PyYAML builds a base-60 integer in time growing with
                # the square of its length
                tag = _STR
        elif tag in _NUMBER_TAGS and ":" in text:
            self.problems.append(Problem.at(mark, "yaml.bad-value", f"base-60 numbers ({shown(text, 20)}) are not "
                                            "accepted: write the number in decimal"))
            return None
        if tag not in _SCALAR_TAGS:
            # a mapping's or a list's tag on a scalar (!!set, !!omap) or a tag of YAML's own (<<, =)
            self.problems.append(Problem.at(mark, "yaml.bad-tag", f"unsupported tag {tag}"))
            return None
        if tag in _NUMBER_TAGS and len(text) > MAX_NUMBER_CHARS:
            # checked before the number is built: a long one costs time growing faster than its length, to
            # build or to print, and no plan, rule or setting holds one
            self.problems.append(Problem.at(mark, "yaml.bad-value", f"a number of {len(text)} characters (at most "
                                            f"{MAX_NUMBER_CHARS}); quote it if it is text"))
            return None
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
        try:
            # the safe loader's constructors (ints, floats, bools, dates, null, text, binary)
            return loader.yaml_constructors[tag](loader, node)
        except yaml.YAMLError as exc:
            self.problems.append(Problem.at(mark, "yaml.bad-value", clip(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)))
        except (ValueError, OverflowError, LookupError, AttributeError):
            # ValueError: e.g. an impossible date such as 2026-13-01; the others: an explicit tag on a value it
            # does not fit (!!bool maybe, !!int "", !!timestamp soon), which PyYAML's constructors do not check
            self.problems.append(Problem.at(mark, "yaml.bad-value", f"{shown(text, 40)} is not a valid {tag.rsplit(':', 1)[-1]}"))
        return None


def load_text(text: str, file: str, problems: list[Problem], budget: NodeBudget | None = None) -> Any:
    """Parse one YAML document; syntax errors, duplicate keys, aliases and limits go to ``problems``.

    Returns ``None`` when the text cannot be parsed at all, or breaks a bound (nesting deeper than
    :data:`MAX_DEPTH`, an alias, more values than ``budget`` allows).  Raises the current call's
    :class:`~engine.errors.Cancelled` / :class:`~engine.errors.DeadlineExceeded` when it ends meanwhile.
    """
    budget = budget or NodeBudget()
    if budget.limit is not None and budget.used > budget.limit:
        return None  # an earlier file of the set used the budget up (and said so)
    found: list[Problem] = []
    loader = _LOADER(text)
    try:
        value = _Builder(loader, file, found, budget).run()
    except yaml.MarkedYAMLError as exc:
        # the parser stops at the first syntax error: only that one is reported (what was built is partial)
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(file, line, col, "yaml.syntax", clip(exc.problem or str(exc))))
        return None
    except yaml.YAMLError as exc:  # pragma: no cover - non-marked errors are rare
        problems.append(Problem(file, 1, 1, "yaml.syntax", clip(str(exc))))
        return None
    except _Refused:
        problems.extend(found)
        return None
    finally:
        loader.dispose()
    problems.extend(found)
    return value


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


def cap_problems(problems: Iterable[Problem], per_file: int, total: int) -> list[Problem]:
    """The first ``per_file`` problems of each file and the first ``total`` overall (in order), each cut
    counted by one ``limit.problems`` problem placed where the cut begins, so a reply stays small however
    broken its input is, and still says how much was left out."""
    by_file: dict[str, list[Problem]] = {}
    count = 0
    for p in sorted(problems):
        by_file.setdefault(p.file, []).append(p)
        count += 1
    kept: list[Problem] = []
    for file, found in by_file.items():
        kept.extend(found[:per_file])
        if len(found) > per_file:
            first = found[per_file]
            kept.append(Problem(file, first.line, first.col, "limit.problems",
                                f"{len(found) - per_file} more problem(s) in this file from here on (at most {per_file} "
                                "are listed per file)"))
    if len(kept) <= total:
        return kept
    shown_count = sum(1 for p in kept[:total] if p.code != "limit.problems")
    first = kept[total]
    files = {p.file for p in kept[total:]}
    return kept[:total] + [Problem(first.file, first.line, first.col, "limit.problems",
                                   f"{count - shown_count} more problem(s) in {len(files)} file(s) from here on (at most "
                                   f"{total} are listed)")]


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
