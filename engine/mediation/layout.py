"""A CDR layout: the declared mapping from one switch's CSV to normalised CDRs.

A layout is a YAML file in ``rules/mediation/<name>.yaml``; its name is the file
stem.  Loading validates everything and collects every problem as
``file:line:col: code: message`` (see ``rules/mediation/README.md`` for the
language).  The result is a frozen :class:`Layout`; ``mapper.compile_layout``
turns it into the hot-path record mapper.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.cdr import Direction, Service
from engine.errors import shown
from engine.mediation.conversions import CONVERSIONS, Classify, Conversion, Number, Timestamp, ValueMap
from engine.mediation.conversions.base import SOURCE_ZONE
from engine.mediation.filters import FILTERS, Filter
from engine.mediation.legs import NON_BILLABLE_LEG, LegRules, parse_legs
from engine.mediation.numbering_plan import NumberingPlan, merge_numbering, parse_numbering_overrides
from engine.mediation.problems import LayoutError
from engine.mediation.sources import SOURCES_FILE, Source, load_sources
from engine.mediation.tenants import DEFAULT_DIRECTORY, TenantDirectory, load_tenants
from engine.yamlio import Fields, Mark, MarkedMap, Problem, load_file, load_text

# CDR fields a layout may fill, with the kind of value each needs and its default conversion
FIELD_TYPES: dict[str, str] = {
    "origin_id": "text",
    "service": "text",
    "direction": "text",
    "start_time": "time",
    "a_number": "text",
    "b_number": "text",
    "imsi": "text",
    "duration_seconds": "int",
    "volume_up_bytes": "int",
    "volume_down_bytes": "int",
    "event_count": "int",
    "visited_network": "text",
    "supplementary_code": "text",
}
_DEFAULT_CONVERSION = {"text": "text", "int": "integer"}
_ENUM_FIELDS = {"service": {s.value for s in Service}, "direction": {d.value for d in Direction}}
# encodings where b"\n" and b"\r" only ever mean a line break (the block reader relies on it)
_ASCII_COMPATIBLE = {"utf-8", "utf-8-sig", "ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}
CSV_FIELD_LIMIT = 131072  # the csv module's own (process-wide) limit; we never raise it
Column = str | int  # a header name, or a 1-based position


NOT_LAYOUTS = ("tenants", "sources")   # the other files of rules/mediation


@dataclass(frozen=True)
class ReadSpec:
    format: str = "csv"           # csv, or key_value (engine.mediation.keyvalue)
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    header_rows: int = 0          # lines before the first record (header, data-type rows, banners)
    header_row: int = 0           # which of them (1-based) holds column names; 0: none
    header_match: str = "exact"   # exact: header == columns; contains: every used column present
    skip_initial_space: bool = False
    max_field_bytes: int = 65536
    max_record_bytes: int = 1 << 20
    pair_separator: str = ";"     # key_value: between pairs
    key_separator: str = "="      # key_value: between a key and its value
    record_marker: str = ""       # key_value: the pairs start after this text on the line


@dataclass(frozen=True)
class FieldRule:
    target: str
    column: Column | None
    value: Any
    conversion: Conversion
    required: bool
    mark: Mark


@dataclass(frozen=True)
class PartialRule:
    """Long calls the switch splits: records sharing ``key`` merge into one CDR once ``final`` arrives.

    A record whose ``sequence`` is empty or 0 is complete on its own.
    """

    key: tuple[Column, ...]
    sequence: Column
    final_column: Column
    final_values: frozenset[str]


@dataclass(frozen=True)
class Layout:
    name: str
    file: str
    description: str
    source: str
    read: ReadSpec
    columns: tuple[str, ...]
    fields: dict[str, FieldRule]
    identity: tuple[Column, ...]
    attributes: dict[str, Column]
    filters: tuple[Filter, ...]
    partials: PartialRule | None
    numbering: NumberingPlan
    tenants: TenantDirectory = field(default=DEFAULT_DIRECTORY)
    identify_tenant: bool = True
    optional_columns: tuple[str, ...] = ()     # trailing columns a switch may leave out
    more_columns: bool = False                 # columns after the declared ones are ignored
    column_encodings: dict[Column, str] = field(default_factory=dict)
    legs: LegRules | None = None
    version: str = ""                          # digest of the layout text: part of a file's mediation identity
    numbering_overrides: dict[str, Any] = field(default_factory=dict)
    needs_source: bool = False                 # local times in the source's zone, or numbers without a country code
    zone: str = "UTC"                          # the bound source's zone (zone: source)
    bound_source: Source | None = None

    @property
    def all_columns(self) -> tuple[str, ...]:
        return self.columns + self.optional_columns

    def accepts_width(self, width: int) -> bool:
        """Whether a record of ``width`` columns is one of the layout's shapes (no header row): the
        columns, or the columns and all the optional ones (a switch setting adds them together), or
        with ``more_columns`` any more."""
        base, full = len(self.columns), len(self.all_columns)
        return width == base or width == full or (self.more_columns and width >= base)

    def shapes(self) -> str:
        """The column counts a record may have, for people."""
        base, full = len(self.columns), len(self.all_columns)
        if self.more_columns:
            return f"{base} or more"
        return str(base) if base == full else f"{base} or {full}"

    def bind(self, source: Source | None) -> "Layout":
        """The layout as it applies to files of ``source``: its zone, its numbering, its name as the CDR source."""
        if source is None:
            return self
        numbering = merge_numbering(self.numbering_overrides, source.numbering)
        return replace(self, numbering=numbering, zone=source.zone, source=source.name, bound_source=source)

    def source_problem(self) -> tuple[str, str] | None:
        """Why files of this layout (as bound) cannot be mediated: (code, message), or None."""
        bound = self.bound_source
        if bound is not None and not bound.known:
            return ("source.unknown", f"no source {bound.name!r} in rules/mediation/{SOURCES_FILE}")
        if self.needs_source and bound is None:
            return ("source.required", f"layout {self.name!r} needs the file's source (its time zone and numbering plan): "
                                       f"name one declared in rules/mediation/{SOURCES_FILE} (--source NAME)")
        if any(isinstance(r.conversion, Number) for r in self.fields.values()) and self.numbering.missing_country_code():
            return ("source.incomplete", f"source {bound.name if bound else '-'!r} gives no country_code, which "
                                         f"layout {self.name!r} needs to read national numbers")
        return None


def load_layout(path: Path | str, tenants: TenantDirectory | None = None) -> Layout:
    """Load one layout file; raises :class:`LayoutError` with every problem found."""
    problems: list[Problem] = []
    path = Path(path)
    if tenants is None:
        tenants = _sibling_tenants(path, problems)
    node = load_file(path, problems)
    layout = parse_layout(node, path.stem, str(path), tenants, problems) if node is not None or not problems else None
    if problems or layout is None:
        if not problems:
            problems.append(Problem(str(path), 1, 1, "layout.empty", "the layout file is empty"))
        raise LayoutError(problems)
    return replace(layout, version=_version(path.read_bytes()))


def load_layout_text(text: str, name: str, file: str = "<layout>", tenants: TenantDirectory = DEFAULT_DIRECTORY) -> Layout:
    problems: list[Problem] = []
    node = load_text(text, file, problems)
    layout = parse_layout(node, name, file, tenants, problems) if node is not None else None
    if problems or layout is None:
        if not problems:
            problems.append(Problem(file, 1, 1, "layout.empty", "the layout text is empty"))
        raise LayoutError(problems)
    return replace(layout, version=_version(text.encode("utf-8")))


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def layout_names(directory: Path | str) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if p.stem not in NOT_LAYOUTS)


def find_layout(directory: Path | str, name: str) -> Layout:
    """The layout ``name`` from a rules directory (``rules/mediation``)."""
    known = layout_names(directory)
    # only a name the folder lists: a caller's name never becomes a path of its choosing (../, 100 KB names)
    if name not in known:
        raise LayoutError([Problem(str(directory), 0, 0, "layout.unknown", f"no layout {shown(name)} (known: {', '.join(known) or 'none'})")])
    return load_layout(Path(directory) / f"{name}.yaml")


def validate_directory(directory: Path | str) -> list[Problem]:
    """Every problem in every layout of a directory, plus its tenants and sources files."""
    directory = Path(directory)
    problems: list[Problem] = []
    tenants = _sibling_tenants(directory / "x.yaml", problems)
    load_sources(directory, problems)
    for name in layout_names(directory):
        path = directory / f"{name}.yaml"
        node = load_file(path, problems)
        if node is not None:
            parse_layout(node, name, str(path), tenants, problems)
    return problems


def _sibling_tenants(path: Path, problems: list[Problem]) -> TenantDirectory:
    tenants_file = path.parent / "tenants.yaml"
    return load_tenants(tenants_file, problems) if tenants_file.is_file() else DEFAULT_DIRECTORY


# ---------------------------------------------------------------- parsing


def parse_layout(node: Any, name: str, file: str, tenants: TenantDirectory, problems: list[Problem]) -> Layout | None:
    start = len(problems)
    f = Fields(node, "layout", problems, Mark(file, 1, 1))
    description = f.optional("description", str, "")
    source = f.optional("source", str, name)
    read = _parse_read(f.optional("read", dict), f.node.mark_of("read") if "read" in f.node else f.mark, problems)
    columns_node = f.optional("columns", list, [])
    optional_node = f.optional("optional_columns", list, [])
    more_columns = f.optional("more_columns", str, "reject")
    encodings_node = f.optional("column_encodings", dict, {})
    legs_node = f.optional("legs", dict)
    numbering_overrides = parse_numbering_overrides(f.optional("numbering", dict), file, problems)
    fields_node = f.required("fields", dict)
    identity_node = f.optional("identity", list)
    attributes_node = f.optional("attributes", dict, {})
    filters_node = f.optional("filters", list, [])
    partials_node = f.optional("partials", dict)
    tenant_mode = f.optional("tenant", str, "identify")
    f.done()

    columns = _parse_columns(list(columns_node or []) + list(optional_node or []), read,
                             f.node.key_mark("columns") if "columns" in f.node else f.mark, problems, marks=(columns_node, optional_node))
    optional = columns[len(columns_node or []):]
    columns = columns[: len(columns_node or [])]
    if more_columns not in ("reject", "ignore"):
        problems.append(Problem.at(f.node.mark_of("more_columns"), "layout.bad-choice", "more_columns must be reject or ignore"))
    if (optional or more_columns == "ignore") and (read.header_row or read.format != "csv"):
        problems.append(Problem.at(f.node.key_mark("optional_columns" if optional else "more_columns"), "layout.bad-shape",
                                   "optional_columns and more_columns are for CSV files without a header row (a header names its columns)"))
    resolve = _ColumnResolver(columns + optional, read, problems)
    rules = _parse_fields(fields_node, resolve, problems) if fields_node is not None else {}
    identity: tuple[Column, ...] = ()
    if identity_node is not None:
        identity = tuple(c for i, c in enumerate(identity_node) if resolve(c, identity_node.mark_of(i), "identity") is not None)
        if "origin_id" in rules:
            problems.append(Problem.at(f.node.key_mark("identity"), "layout.identity-twice", "give either identity or fields.origin_id, not both"))
        if not identity_node:
            problems.append(Problem.at(f.node.mark_of("identity"), "layout.identity-empty", "identity needs at least one column"))
    elif fields_node is not None and "origin_id" not in rules:
        problems.append(Problem.at(f.node.key_mark("fields"), "layout.no-identity", "declare identity (columns) or fields.origin_id: duplicates need it"))
    if fields_node is not None:
        for needed in ("start_time", "service"):
            if needed not in rules and needed not in fields_node:
                problems.append(Problem.at(f.node.key_mark("fields"), "layout.missing-field", f"fields.{needed} is required"))
    attributes: dict[str, Column] = {}
    for key, col in (attributes_node or {}).items():
        if not isinstance(key, str) or not key or any(c in key for c in ";="):
            problems.append(Problem.at(attributes_node.key_mark(key), "layout.bad-attribute", "attribute names are text without ';' or '='"))
            continue
        if resolve(col, attributes_node.mark_of(key), f"attributes.{key}") is not None:
            attributes[key] = col
    filters = _parse_filters(filters_node, resolve, rules, problems)
    partials = _parse_partials(partials_node, f.node.mark_of("partials") if partials_node is not None else f.mark, resolve, problems)
    legs = parse_legs(legs_node, f.node.mark_of("legs") if legs_node is not None else f.mark, resolve, problems)
    if legs is not None and legs.pairs is not None and partials is not None:
        problems.append(Problem.at(f.node.key_mark("legs"), "layout.legs-and-partials", "a layout holds back either partial records or leg pairs, not both"))
    encodings = _parse_encodings(encodings_node, read, resolve, problems)
    if tenant_mode not in ("identify", "none"):
        problems.append(Problem.at(f.node.mark_of("tenant"), "layout.bad-choice", "tenant must be identify or none"))
    if len(problems) > start:
        return None
    numbering = merge_numbering(numbering_overrides)
    needs_source = any(isinstance(r.conversion, Timestamp) and r.conversion.zone == SOURCE_ZONE for r in rules.values()) or (
        any(isinstance(r.conversion, Number) for r in rules.values()) and numbering.missing_country_code())
    return Layout(
        name=name,
        file=file,
        description=description,
        source=source,
        read=read,
        columns=columns,
        fields=rules,
        identity=identity,
        attributes=attributes,
        filters=tuple(filters),
        partials=partials,
        numbering=numbering,
        tenants=tenants,
        identify_tenant=tenant_mode == "identify",
        optional_columns=optional,
        more_columns=more_columns == "ignore",
        column_encodings=encodings,
        legs=legs,
        numbering_overrides=numbering_overrides,
        needs_source=needs_source,
    )


def _parse_encodings(node: Any, read: ReadSpec, resolve: "_ColumnResolver", problems: list[Problem]) -> dict[Column, str]:
    out: dict[Column, str] = {}
    for col, encoding in (node or {}).items():
        where = f"column_encodings.{col}"
        if resolve(col, node.key_mark(col), where) is None:
            continue
        try:
            canonical = codecs.lookup(encoding).name if isinstance(encoding, str) else ""
        except LookupError:
            canonical = ""
        if canonical not in _ASCII_COMPATIBLE:
            problems.append(Problem.at(node.mark_of(col), "read.bad-encoding",
                                       f"{where}: {encoding!r} is not supported (use one of {', '.join(sorted(_ASCII_COMPATIBLE))})"))
            continue
        if canonical != read.encoding:
            out[col] = canonical
    return out


def _parse_read(node: Any, mark: Mark, problems: list[Problem]) -> ReadSpec:
    if node is None:
        return ReadSpec()
    f = Fields(node, "read", problems)
    fmt = f.optional("format", str, "csv")
    pair_separator = f.optional("pair_separator", str, ";")
    key_separator = f.optional("key_separator", str, "=")
    record_marker = f.optional("record_marker", str, "")
    delimiter = f.optional("delimiter", str, ",")
    quotechar = f.optional("quotechar", str, '"')
    encoding = f.optional("encoding", str, "utf-8")
    header_rows = f.optional("header_rows", int, 0)
    header_row = f.optional("header_row", int, 0)
    header_match = f.optional("header_match", str, "exact")
    skip_space = f.optional("skip_initial_space", bool, False)
    max_field = f.optional("max_field_bytes", int, 65536)
    max_record = f.optional("max_record_bytes", int, 1 << 20)
    f.done()
    if fmt not in ("csv", "key_value"):
        problems.append(Problem.at(f.node.mark_of("format"), "read.bad-choice", "read.format must be csv or key_value"))
    for key, value in (("pair_separator", pair_separator), ("key_separator", key_separator)):
        if not value or "\n" in value or "\r" in value or pair_separator == key_separator:
            problems.append(Problem.at(f.node.mark_of(key), "read.bad-char", f"read.{key} must be non-empty, differ from the other separator and hold no line break"))
    if fmt == "key_value" and header_rows:
        problems.append(Problem.at(f.node.mark_of("header_rows"), "read.bad-header", "key_value records carry their keys: no header rows"))
    for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
        if len(value) != 1 or value in "\r\n":
            problems.append(Problem.at(f.node.mark_of(key), "read.bad-char", f"read.{key} must be one character, not a line break"))
    if delimiter == quotechar:
        problems.append(Problem.at(f.node.mark_of("quotechar"), "read.bad-char", "read.quotechar must differ from the delimiter"))
    try:
        canonical = codecs.lookup(encoding).name
    except LookupError:
        canonical = ""
    if canonical not in _ASCII_COMPATIBLE:
        problems.append(
            Problem.at(f.node.mark_of("encoding"), "read.bad-encoding", f"encoding {encoding!r} is not supported (use one of {', '.join(sorted(_ASCII_COMPATIBLE))})")
        )
    if header_rows < 0 or not 0 <= header_row <= header_rows:
        problems.append(Problem.at(f.node.mark_of("header_row"), "read.bad-header", "read.header_row must be 0 (none) or one of the header_rows"))
    if header_match not in ("exact", "contains"):
        problems.append(Problem.at(f.node.mark_of("header_match"), "read.bad-choice", "read.header_match must be exact or contains"))
    if not 1 <= max_field <= CSV_FIELD_LIMIT:
        problems.append(Problem.at(f.node.mark_of("max_field_bytes"), "read.bad-limit", f"read.max_field_bytes must be 1..{CSV_FIELD_LIMIT}"))
    if not 1024 <= max_record <= 64 << 20:
        problems.append(Problem.at(f.node.mark_of("max_record_bytes"), "read.bad-limit", "read.max_record_bytes must be 1 KiB..64 MiB"))
    return ReadSpec(fmt, delimiter, quotechar, canonical or "utf-8", header_rows, header_row, header_match, skip_space, max_field, max_record,
                    pair_separator, key_separator, record_marker)


def _parse_columns(node: list[Any], read: ReadSpec, mark: Mark, problems: list[Problem], marks: tuple[Any, Any]) -> tuple[str, ...]:
    """``columns`` then ``optional_columns`` (``marks`` are the two YAML lists, for locations)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    first = len(marks[0] or [])
    for i, name in enumerate(node):
        where, at = (marks[0], i) if i < first else (marks[1], i - first)
        if not isinstance(name, str) or not name:
            problems.append(Problem.at(where.mark_of(at), "layout.bad-column", f"columns[{i}] must be a name"))
            continue
        if name in seen:
            problems.append(Problem.at(where.mark_of(at), "layout.duplicate-column", f"column {name!r} is listed twice (first at position {seen[name]})"))
        seen.setdefault(name, i + 1)
        names.append(name)
    if not names and read.header_row == 0:
        problems.append(Problem.at(mark, "layout.no-columns", "a layout without a header row must list its columns"))
    return tuple(names)


class _ColumnResolver:
    """Checks a column reference (name or 1-based position) against what the layout declares."""

    def __init__(self, columns: tuple[str, ...], read: ReadSpec, problems: list[Problem]) -> None:
        self.columns = columns
        self.open_header = read.header_row > 0 and read.header_match == "contains"
        self.problems = problems

    def __call__(self, ref: Any, mark: Mark, where: str) -> Column | None:
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            self.problems.append(Problem.at(mark, "layout.bad-column", f"{where}: a column is a name or a 1-based position"))
            return None
        if isinstance(ref, int):
            if not 1 <= ref <= (len(self.columns) or ref):
                self.problems.append(Problem.at(mark, "layout.unknown-column", f"{where}: there is no column {ref}"))
                return None
            return ref
        if ref not in self.columns and not self.open_header:
            self.problems.append(Problem.at(mark, "layout.unknown-column", f"{where}: unknown column {ref!r}"))
            return None
        return ref


def _parse_fields(node: MarkedMap, resolve: _ColumnResolver, problems: list[Problem]) -> dict[str, FieldRule]:
    rules: dict[str, FieldRule] = {}
    for target, spec in node.items():
        where = f"fields.{target}"
        if target not in FIELD_TYPES:
            problems.append(Problem.at(node.key_mark(target), "layout.unknown-field", f"{where}: not a CDR field a layout can fill ({', '.join(FIELD_TYPES)})"))
            continue
        rule = _parse_rule(target, spec, node.mark_of(target), resolve, problems)
        if rule is not None:
            rules[target] = rule
    return rules


def _parse_rule(target: str, spec: Any, mark: Mark, resolve: _ColumnResolver, problems: list[Problem]) -> FieldRule | None:
    where = f"fields.{target}"
    start = len(problems)
    f = Fields(spec, where, problems, mark)
    column = f.optional("column", (str, int))
    value = f.optional("value", (str, int))
    kind = f.optional("convert", str, _DEFAULT_CONVERSION.get(FIELD_TYPES[target]))
    required = f.optional("required", bool, False)
    if (column is None) == (value is None):
        problems.append(Problem.at(f.mark, "layout.column-or-value", f"{where}: give exactly one of column or value"))
    if column is not None:
        resolve(column, f.node.mark_of("column"), where)
    cls = CONVERSIONS.get(kind or "")
    conversion: Conversion | None = None
    if cls is None:
        known = ", ".join(CONVERSIONS)
        problems.append(Problem.at(f.node.mark_of("convert") if "convert" in f.node else f.mark, "layout.unknown-conversion", f"{where}: convert must be one of {known}"))
    else:
        conversion = cls.parse(f, where, problems)
        if cls.produces != FIELD_TYPES[target]:
            problems.append(
                Problem.at(f.node.mark_of("convert") if "convert" in f.node else f.mark, "layout.wrong-conversion", f"{where}: {kind} gives {cls.produces}, the field needs {FIELD_TYPES[target]}")
            )
    f.done()
    allowed = _ENUM_FIELDS.get(target)
    if allowed is not None:
        outputs = [value] if value is not None else (conversion.outputs() if isinstance(conversion, (ValueMap, Classify)) else None)
        if outputs is None and column is not None:
            problems.append(Problem.at(f.mark, "layout.unchecked-enum", f"{where}: use convert: map or classify so every value is one of {sorted(allowed)}"))
        for out in outputs or []:
            if out not in allowed:
                problems.append(Problem.at(f.mark, "layout.bad-value", f"{where}: {out!r} is not one of {sorted(allowed)}"))
    if value is not None and allowed is None and FIELD_TYPES[target] == "int" and not isinstance(value, int):
        problems.append(Problem.at(f.node.mark_of("value"), "schema.type", f"{where}.value: expected integer"))
    if len(problems) > start or conversion is None:
        return None
    return FieldRule(target, column, value, conversion, required, f.mark)


def _parse_filters(node: Any, resolve: _ColumnResolver, rules: dict[str, FieldRule], problems: list[Problem]) -> list[Filter]:
    out: list[Filter] = []
    ids: dict[str, int] = {}
    for i, spec in enumerate(node or []):
        where = f"filters[{i}]"
        f = Fields(spec, where, problems, node.mark_of(i))
        filter_id = f.required("id", str)
        column = f.optional("column", (str, int))
        target_field = f.optional("field", str)
        operands = {k: f.optional(k, (str, int, list)) for k in FILTERS}
        f.done()
        if filter_id == NON_BILLABLE_LEG:
            problems.append(Problem.at(f.node.mark_of("id"), "layout.reserved-id", f"{where}: {NON_BILLABLE_LEG!r} is the id of the leg rule"))
        if filter_id is not None:
            if filter_id in ids:
                problems.append(Problem.at(f.node.mark_of("id"), "layout.duplicate-filter", f"{where}: filter id {filter_id!r} used twice (line {ids[filter_id]})"))
            ids.setdefault(filter_id, f.mark.line)
        if (column is None) == (target_field is None):
            problems.append(Problem.at(f.mark, "layout.column-or-field", f"{where}: give exactly one of column or field"))
            continue
        if column is not None and resolve(column, f.node.mark_of("column"), where) is None:
            continue
        if target_field is not None and target_field not in FIELD_TYPES:
            problems.append(Problem.at(f.node.mark_of("field"), "layout.unknown-field", f"{where}: {target_field!r} is not a CDR field"))
            continue
        given = [k for k, v in operands.items() if v is not None]
        if len(given) != 1:
            problems.append(Problem.at(f.mark, "layout.filter-kind", f"{where}: give exactly one of {', '.join(FILTERS)}"))
            continue
        kind = given[0]
        cls = FILTERS[kind]
        message = cls.check_operand(operands[kind])
        numeric = target_field is not None and FIELD_TYPES[target_field] == "int"
        if message is None and kind == "below" and not numeric:
            message = "below applies to an integer field (duration_seconds, volumes, event_count)"
        if message is None and target_field is not None and kind in ("equals", "in", "not_in"):
            values = operands[kind] if isinstance(operands[kind], list) else [operands[kind]]
            if any(isinstance(v, int) != numeric for v in values):
                message = f"{target_field} holds {'integers' if numeric else 'text'}: compare it with {'integers' if numeric else 'text'}"
        if message is None and kind in ("matches", "not_matches") and numeric:
            message = "matches applies to text, not to an integer field"
        if message is not None:
            problems.append(Problem.at(f.node.mark_of(kind), "layout.bad-filter", f"{where}: {message}"))
            continue
        if filter_id is None:
            continue
        target = target_field if target_field is not None else column
        out.append(cls(filter_id, target, column is not None, operands[kind], f.mark))
    return out


def _parse_partials(node: Any, mark: Mark, resolve: _ColumnResolver, problems: list[Problem]) -> PartialRule | None:
    if node is None:
        return None
    f = Fields(node, "partials", problems, mark)
    key: Any = f.required("key", list) or []
    sequence = f.required("sequence", (str, int))
    final = f.required("final", dict)
    f.done()
    if not key:
        problems.append(Problem.at(f.mark, "layout.partials-key", "partials.key needs at least one column"))
    for i, col in enumerate(key):
        resolve(col, key.mark_of(i), "partials.key")
    if sequence is not None:
        resolve(sequence, f.node.mark_of("sequence"), "partials.sequence")
    if final is None:
        return None
    g = Fields(final, "partials.final", problems)
    final_column = g.required("column", (str, int))
    final_values = g.required("in", list) or []
    g.done()
    if final_column is not None:
        resolve(final_column, g.node.mark_of("column"), "partials.final")
    if not final_values or not all(isinstance(v, (str, int)) for v in final_values):
        problems.append(Problem.at(g.mark, "layout.partials-final", "partials.final.in lists the values that mark the last partial"))
    if sequence is None or final_column is None:
        return None
    return PartialRule(tuple(key), sequence, final_column, frozenset(str(v) for v in final_values))
