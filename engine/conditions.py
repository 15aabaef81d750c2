"""The one condition language of plans and rules.

A condition is written in YAML as::

    {all: [c, ...]}            every sub-condition holds
    {any: [c, ...]}            at least one holds
    {not: c}                   c does not hold
    {field.path: {op: value}}  a test on one fact field (several ops in one mapping: all must hold)
    {field.path: value}        shorthand for {eq: value}; a list is shorthand for {in: [...]}

A mapping with several keys means ``all`` of them.  Operators: ``eq ne lt lte gt
gte in exists matches``.

Semantics (identical in both backends, pinned by a differential test):

* A field that is absent or ``None`` is *missing*; every test on a missing
  field is false except ``exists: false``.
* Values have three families: number (int; bool is *not* a number), text and
  true/false.  Floats and Decimals belong to none (money is int micro-units):
  only ``exists`` sees them.  A test against a value of another family is false -- ``"1"`` is
  not ``1`` and ``true`` is not ``1`` (durable_rules would coerce them; the
  durable backend posts each family under its own key so it cannot).
* ``ne`` means "present, same family, different" (durable's ``$neq``);
  ``not: {f: {eq: v}}`` is the full complement and is also true when ``f`` is
  missing.
* ``lt lte gt gte`` compare numbers only.  ``matches`` is a full match of a
  small regular-expression subset (literals, ``. * + ? | ( ) [ ] [^ ] {n,m}``)
  that durable_rules' own matcher implements; ``not`` around ``matches`` is
  refused because durable_rules has no negated match.  The Python side runs
  it with RE2 (linear time in the value: a pattern such as ``(1|1)*2`` cannot
  backtrack for seconds); what RE2 does not implement (look-around) is refused
  when the file is validated, as is a pattern over ``MAX_PATTERN`` characters.

``Condition.to_python()`` compiles closures (no ``eval`` of user text);
``Condition.to_durable()`` emits durable_rules' JSON condition.  durable_rules
has no ``not`` and no ``in``: ``in`` becomes ``$or`` of equalities and ``not``
is pushed to the leaves (De Morgan), each negated leaf becoming "the opposite
operator, or the field is not present in this family" (``$nex``), which is the
exact complement once families live under separate keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import re2

from engine.yamlio import Mark, MarkedList, MarkedMap, Problem, plain

Predicate = Callable[[Mapping[str, Any]], bool]
# (field path, family) -> key in the durable message; family is "num", "str", "bool" or "any"
DurableKey = Callable[[str, str], str]

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "exists", "matches")
_ORDER_OPS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_NEGATED_ORDER = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt"}
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_RESERVED = {"all", "any", "not"}
# durable_rules' matcher understands these; no backslashes, no anchors
_REGEX_CHARS = re.compile(r"^[A-Za-z0-9_:@#/ ,.*+?|()\[\]{}^=-]*$")
# durable_rules stores integers as 64-bit
_INT_LIMIT = 2**62
MAX_PATTERN = 256   # characters of one 'matches' pattern: number plans and network codes need far fewer
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False   # a refused pattern is reported as a plan problem, not logged by the library


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A 'matches' pattern as a whole-value test that runs in linear time (RE2); raises ``re2.error`` for a pattern
    RE2 does not implement."""
    full = re2.compile(pattern, _RE2_OPTIONS).fullmatch
    # the bytes path of the bindings is about four times faster than the str path (no offset mapping back to str)
    return lambda value: full(value.encode("utf-8", "surrogatepass")) is not None


_FAMILY_OF_TYPE: dict[type, str] = {bool: "bool", int: "num", str: "str"}


def family(value: Any) -> str | None:
    """The value family of a fact value: ``num``, ``str``, ``bool`` or None (missing/unsupported)."""
    fam = _FAMILY_OF_TYPE.get(type(value))
    if fam is not None:
        return fam
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


def field_getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """Read a dotted path from nested mappings; a missing step gives None."""
    parts = path.split(".")
    if len(parts) == 1:
        name = parts[0]

        def get_one(fact: Mapping[str, Any]) -> Any:
            return fact.get(name)

        return get_one

    def get_path(fact: Mapping[str, Any]) -> Any:
        value: Any = fact
        for part in parts:
            # dict first: the ABC check is ten times slower and facts are dicts
            if type(value) is not dict and not isinstance(value, Mapping):
                return None
            value = value.get(part)
            if value is None:
                return None
        return value

    return get_path


def _plain_key(path: str, fam: str) -> str:
    return path


def _join(op: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """``{op: parts}`` with nested same-op groups spliced in and repeats dropped (smaller durable rulesets)."""
    flat: list[dict[str, Any]] = []
    for part in parts:
        for item in part[op] if set(part) == {op} else [part]:
            if item not in flat:
                flat.append(item)
    return flat[0] if len(flat) == 1 else {op: flat}


class Condition:
    """Base of the condition tree.  Immutable; build with :func:`parse_condition` or the classes."""

    def to_python(self) -> Predicate:
        raise NotImplementedError

    def to_durable(self, key: DurableKey | None = None) -> dict[str, Any]:
        """durable_rules JSON condition.  ``key`` maps (field, family) to the message key."""
        return self._durable(key or _plain_key, negate=False)

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:
        raise NotImplementedError

    def fields(self) -> frozenset[str]:
        raise NotImplementedError

    def to_plain(self) -> Any:
        """Canonical YAML/JSON form (stable; used in golden artifacts and content hashes)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class Comparison(Condition):
    field: str
    op: str
    value: Any

    def to_python(self) -> Predicate:
        get = field_getter(self.field)
        op, want = self.op, self.value
        if op == "exists":
            if want:
                return lambda f: get(f) is not None
            return lambda f: get(f) is None
        if op == "in":
            wanted = {(family(v), v) for v in want}

            def is_in(f: Mapping[str, Any]) -> bool:
                v = get(f)
                fam = family(v)
                return fam is not None and (fam, v) in wanted

            return is_in
        if op == "matches":
            whole = compile_pattern(want)
            return lambda f: family(v := get(f)) == "str" and whole(v)
        fam = family(want)
        if op == "eq":
            exact = type(want)  # fast path; family() still decides for subclasses
            return lambda f: (v := get(f)) is not None and (type(v) is exact or family(v) == fam) and v == want
        if op == "ne":
            return lambda f: family(v := get(f)) == fam and v != want
        if op == "lt":
            return lambda f: family(v := get(f)) == "num" and v < want
        if op == "lte":
            return lambda f: family(v := get(f)) == "num" and v <= want
        if op == "gt":
            return lambda f: family(v := get(f)) == "num" and v > want
        if op == "gte":
            return lambda f: family(v := get(f)) == "num" and v >= want
        raise ValueError(f"unknown operator {op}")  # pragma: no cover - parse refuses it

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:
        op, want, path = self.op, self.value, self.field
        if op == "exists":
            present = bool(want) != negate
            return {"$ex" if present else "$nex": {key(path, "any"): 1}}
        if op == "in":
            parts = [Comparison(path, "eq", v) for v in want]
            if not negate:
                return AnyOf(tuple(parts))._durable(key, False)
            # not in [a, b]: no value of this family, or present and different from each
            fam_keys = {key(path, family(v) or "any") for v in want}
            differs = _join("$and", [{"$neq": {key(path, family(v) or "any"): v}} for v in want])
            if len(fam_keys) == 1:
                return {"$or": [differs, {"$nex": {next(iter(fam_keys)): 1}}]}
            return AllOf(tuple(Not(p) for p in parts))._durable(key, False)
        if op == "matches":
            if negate:  # refused by parse_condition; guard programmatic use
                raise ValueError("durable_rules cannot express a negated 'matches'")
            return {"$mt": {key(path, "str"): want}}
        fam = "num" if op in _ORDER_OPS else family(want) or "any"
        k = key(path, fam)
        if not negate:
            if op == "eq":
                return {k: want}
            if op == "ne":
                return {"$neq": {k: want}}
            return {_ORDER_OPS[op]: {k: want}}
        # the opposite test, or the field has no value of this family
        absent = {"$nex": {k: 1}}
        if op == "eq":
            opposite: dict[str, Any] = {"$neq": {k: want}}
        elif op == "ne":
            opposite = {k: want}
        else:
            opposite = {_ORDER_OPS[_NEGATED_ORDER[op]]: {k: want}}
        return {"$or": [opposite, absent]}

    def fields(self) -> frozenset[str]:
        return frozenset((self.field,))

    def to_plain(self) -> Any:
        return {self.field: {self.op: list(self.value) if self.op == "in" else self.value}}

    def describe(self) -> str:
        value = "[" + ", ".join(map(_show, self.value)) + "]" if self.op == "in" else _show(self.value)
        return f"{self.field} {self.op} {value}"


@dataclass(frozen=True)
class AllOf(Condition):
    items: tuple[Condition, ...]

    def to_python(self) -> Predicate:
        preds = tuple(c.to_python() for c in self.items)
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            a, b = preds
            return lambda f: a(f) and b(f)

        def every(f: Mapping[str, Any]) -> bool:
            for p in preds:
                if not p(f):
                    return False
            return True

        return every

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:
        return _join("$or" if negate else "$and", [c._durable(key, negate) for c in self.items])

    def fields(self) -> frozenset[str]:
        return frozenset().union(*(c.fields() for c in self.items))

    def to_plain(self) -> Any:
        return {"all": [c.to_plain() for c in self.items]}

    def describe(self) -> str:
        return "(" + " and ".join(c.describe() for c in self.items) + ")"


@dataclass(frozen=True)
class AnyOf(Condition):
    items: tuple[Condition, ...]

    def to_python(self) -> Predicate:
        preds = tuple(c.to_python() for c in self.items)
        if len(preds) == 1:
            return preds[0]

        def some(f: Mapping[str, Any]) -> bool:
            for p in preds:
                if p(f):
                    return True
            return False

        return some

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:
        return _join("$and" if negate else "$or", [c._durable(key, negate) for c in self.items])

    def fields(self) -> frozenset[str]:
        return frozenset().union(*(c.fields() for c in self.items))

    def to_plain(self) -> Any:
        return {"any": [c.to_plain() for c in self.items]}

    def describe(self) -> str:
        return "(" + " or ".join(c.describe() for c in self.items) + ")"


@dataclass(frozen=True)
class Not(Condition):
    item: Condition

    def to_python(self) -> Predicate:
        inner = self.item.to_python()
        return lambda f: not inner(f)

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:
        return self.item._durable(key, not negate)

    def fields(self) -> frozenset[str]:
        return self.item.fields()

    def to_plain(self) -> Any:
        return {"not": self.item.to_plain()}

    def describe(self) -> str:
        return f"not {self.item.describe()}"


class _Always(Condition):
    """The empty condition (a rule without ``when``): always true."""

    def to_python(self) -> Predicate:
        return lambda f: True

    def _durable(self, key: DurableKey, negate: bool) -> dict[str, Any]:  # pragma: no cover - never emitted
        raise ValueError("an empty condition has no durable form; omit it from the rule")

    def fields(self) -> frozenset[str]:
        return frozenset()

    def to_plain(self) -> Any:
        return {}

    def describe(self) -> str:
        return "always"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Always)

    def __hash__(self) -> int:
        return 0


ALWAYS: Condition = _Always()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class DurableFields:
    """Maps fact fields to durable_rules message keys, one key per value family.

    durable_rules coerces across types (``1 == true == "1"``); posting each
    family under its own key (``f3_num``, ``f3_str``...) keeps the Python
    semantics.  ``fN_any`` marks "present with any value" for ``exists``.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = tuple(sorted(set(paths)))
        self._index = {p: i for i, p in enumerate(self.paths)}
        self._getters = tuple((i, field_getter(p)) for i, p in enumerate(self.paths))

    def key(self, path: str, fam: str) -> str:
        return f"f{self._index[path]}_{fam}"

    def message(self, fact: Mapping[str, Any]) -> dict[str, Any]:
        msg: dict[str, Any] = {}
        for i, get in self._getters:
            value = get(fact)
            if value is None:
                continue
            msg[f"f{i}_any"] = 1
            fam = family(value)
            if fam is not None:
                msg[f"f{i}_{fam}"] = value
        return msg


# --- programmatic construction (used by the rule compilers) ---------------------------------


def eq(path: str, value: Any) -> Comparison:
    return Comparison(path, "eq", value)


def one_of(path: str, values: Iterable[Any]) -> Condition:
    vals = tuple(dict.fromkeys(values))
    return Comparison(path, "eq", vals[0]) if len(vals) == 1 else Comparison(path, "in", vals)


def all_of(*items: Condition) -> Condition:
    """Conjunction that drops ALWAYS and flattens nested AllOf (a tidier durable form)."""
    kept: tuple[Condition, ...] = ()
    for c in items:
        if c == ALWAYS:
            continue
        kept += c.items if isinstance(c, AllOf) else (c,)
    if not kept:
        return ALWAYS
    return kept[0] if len(kept) == 1 else AllOf(kept)


def has_negated_matches(cond: Condition, negate: bool = False) -> bool:
    if isinstance(cond, Comparison):
        return negate and cond.op == "matches"
    if isinstance(cond, Not):
        return has_negated_matches(cond.item, not negate)
    if isinstance(cond, (AllOf, AnyOf)):
        return any(has_negated_matches(c, negate) for c in cond.items)
    return False


# --- parsing ---------------------------------------------------------------------------------


def parse_condition(node: Any, what: str, problems: list[Problem], mark: Mark | None = None) -> Condition | None:
    """Parse a YAML condition; every problem is appended (``condition.*`` codes).  None if invalid."""
    start = len(problems)
    here = getattr(node, "mark", None) or mark or Mark("?", 1, 1)
    cond = _parse(node, what, problems, here)
    if cond is not None and has_negated_matches(cond):
        problems.append(Problem.at(here, "condition.negated-matches", f"{what}: 'matches' cannot be used under 'not'"))
    return cond if len(problems) == start else None


def _parse(node: Any, what: str, problems: list[Problem], mark: Mark) -> Condition | None:
    if not isinstance(node, dict):
        problems.append(Problem.at(getattr(node, "mark", mark), "condition.type", f"{what}: a condition must be a mapping"))
        return None
    if not node:
        problems.append(Problem.at(getattr(node, "mark", mark), "condition.empty", f"{what}: empty condition"))
        return None
    parts: list[Condition] = []
    ok = True
    for key, value in node.items():
        key_mark = node.key_mark(key) if isinstance(node, MarkedMap) else mark
        value_mark = node.mark_of(key) if isinstance(node, MarkedMap) else mark
        sub = f"{what}.{key}"
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                problems.append(Problem.at(value_mark, "condition.type", f"{sub}: expected a non-empty list of conditions"))
                ok = False
                continue
            items = []
            for i, child in enumerate(value):
                child_mark = value.mark_of(i) if isinstance(value, MarkedList) else value_mark
                c = _parse(child, f"{sub}[{i}]", problems, child_mark)
                ok = ok and c is not None
                if c is not None:
                    items.append(c)
            if ok:
                parts.append(AllOf(tuple(items)) if key == "all" else AnyOf(tuple(items)))
        elif key == "not":
            c = _parse(value, sub, problems, value_mark)
            ok = ok and c is not None
            if c is not None:
                parts.append(Not(c))
        else:
            c = _parse_field(key, value, sub, problems, key_mark, value_mark)
            ok = ok and c is not None
            if c is not None:
                parts.append(c)
    if not ok or not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _parse_field(key: Any, value: Any, what: str, problems: list[Problem], key_mark: Mark, value_mark: Mark) -> Condition | None:
    if not isinstance(key, str) or not _FIELD_RE.match(key) or key in _RESERVED:
        problems.append(Problem.at(key_mark, "condition.bad-field", f"{what}: {key!r} is not a field name (letters, digits, _ and dots)"))
        return None
    if not isinstance(value, dict):
        op_map: dict[str, Any] = {"in" if isinstance(value, list) else "eq": value}
        marks = {next(iter(op_map)): value_mark}
    else:
        op_map = value
        marks = {k: (value.mark_of(k) if isinstance(value, MarkedMap) else value_mark) for k in value}
        if not value:
            problems.append(Problem.at(value_mark, "condition.empty", f"{what}: no operator given"))
            return None
    tests: list[Condition] = []
    ok = True
    for op, operand in op_map.items():
        m = marks[op]
        op_mark = value.key_mark(op) if isinstance(value, MarkedMap) else m
        c = _parse_op(key, op, operand, f"{what}.{op}", problems, op_mark, m)
        ok = ok and c is not None
        if c is not None:
            tests.append(c)
    if not ok:
        return None
    return tests[0] if len(tests) == 1 else AllOf(tuple(tests))


def _scalar_ok(value: Any) -> bool:
    fam = family(value)
    if fam == "num":
        return -_INT_LIMIT < value < _INT_LIMIT
    return fam is not None


def _parse_op(path: str, op: Any, operand: Any, what: str, problems: list[Problem], op_mark: Mark, mark: Mark) -> Condition | None:
    def bad(message: str) -> None:
        problems.append(Problem.at(mark, "condition.bad-value", f"{what}: {message}"))

    if op not in OPS:
        problems.append(Problem.at(op_mark, "condition.unknown-op", f"{what}: unknown operator {op!r} (use one of {', '.join(OPS)})"))
        return None
    if op in ("eq", "ne"):
        if not _scalar_ok(operand):
            bad("expected a text, integer or true/false value")
            return None
    elif op in _ORDER_OPS:
        if family(operand) != "num" or not _scalar_ok(operand):
            bad("expected an integer (money in micro-units, times in seconds)")
            return None
    elif op == "in":
        if not isinstance(operand, list) or not operand or not all(_scalar_ok(v) for v in operand):
            bad("expected a non-empty list of text, integer or true/false values")
            return None
        operand = tuple(dict.fromkeys((family(v), v) for v in plain(operand)))
        operand = tuple(v for _, v in operand)
    elif op == "exists":
        if family(operand) != "bool":
            bad("expected true or false")
            return None
    elif op == "matches":
        if not isinstance(operand, str) or not _REGEX_CHARS.match(operand):
            problems.append(
                Problem.at(mark, "condition.bad-regex", f"{what}: use letters, digits and . * + ? | ( ) [ ] {{ }} only (no backslash or anchors)")
            )
            return None
        if len(operand) > MAX_PATTERN:
            problems.append(Problem.at(mark, "condition.bad-regex", f"{what}: at most {MAX_PATTERN} characters, not {len(operand)}"))
            return None
        try:
            re.compile(operand)
            compile_pattern(operand)
        except (re.error, re2.error) as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            problems.append(Problem.at(mark, "condition.bad-regex", f"{what}: {reason} (patterns run on RE2: no look-around)"))
            return None
        if "^" in operand.replace("[^", ""):
            problems.append(Problem.at(mark, "condition.bad-regex", f"{what}: '^' is only allowed as '[^...]' (matches are whole-value)"))
            return None
    return Comparison(path, op, operand)


def condition_from_plain(data: Any, what: str = "condition") -> Condition:
    """Rebuild a condition from :meth:`Condition.to_plain` output (an IR artifact); raises ValueError."""
    problems: list[Problem] = []
    if data == {}:
        return ALWAYS
    cond = parse_condition(data, what, problems)
    if cond is None:
        raise ValueError("; ".join(str(p) for p in problems))
    return cond


__all__ = [
    "ALWAYS",
    "AllOf",
    "AnyOf",
    "Comparison",
    "Condition",
    "DurableFields",
    "DurableKey",
    "Not",
    "OPS",
    "Predicate",
    "all_of",
    "condition_from_plain",
    "eq",
    "family",
    "field_getter",
    "one_of",
    "parse_condition",
]
