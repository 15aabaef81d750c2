"""Compile a :class:`Layout` (and the header a file actually carries) into a record mapper.

The mapper is the hot path: one call per CSV record, a million records in a few
seconds.  So it is generated as one small Python function per layout, the way
``collections.namedtuple`` builds its classes: the generated source holds only
field names from :data:`engine.cdr.COLUMNS`, column positions (integers) and
names of values bound in its namespace; nothing from the layout file is pasted
into source text.  Inspect it with ``CompiledLayout.source``.

``map_row(row)`` returns either a normalised CDR row (a tuple in
:data:`engine.cdr.COLUMNS` order, ``start_time`` as ISO UTC text) or the id of
the filter that dropped the record (a ``str``; :data:`engine.mediation.legs.NON_BILLABLE_LEG`
for a leg the layout's leg rule does not bill); it raises :class:`FieldError`
when a value cannot be converted.  Common conversions are inlined (``int(...)``);
when an inlined one fails, the record is mapped again with every converter
called (``map_exact``), which either converts what the inline form could not
(a duration with a decimal fraction) or names the field at fault.
"""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, fields
from typing import Any, Callable, Sequence

from engine.cdr import COLUMNS, TEXT_LIMITS, MediatedCdr, escape_attribute, identity_prefix
from engine.mediation.batch import BatchMapper
from engine.mediation.conversions import CompileContext, Text
from engine.mediation.filters import Filter
from engine.mediation.layout import FIELD_TYPES, Column, Layout
from engine.mediation.problems import ConversionError, FieldError, FileLevelError
from engine.mediation.tenants import SubscriberTenants

CdrRow = tuple  # a normalised CDR in COLUMNS order (see module doc)
POSITION = {name: i for i, name in enumerate(COLUMNS)}

_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(MediatedCdr) if f.default is not MISSING}
_DEFAULTS.update({"direction": "originating", "tenant": "", "attributes": ""})


@dataclass(frozen=True)
class PartialInfo:
    key: str
    sequence: int
    final: bool


# the text fields a layout fills that the store keeps in sized columns
_LIMITED = {name: TEXT_LIMITS[name] for name, kind in FIELD_TYPES.items() if kind == "text" and name in TEXT_LIMITS}


@dataclass(frozen=True)
class CompiledLayout:
    layout: Layout
    expected_columns: int                             # the column count of a complete record
    accepts: Callable[[int], bool]                    # whether a record of this many columns has a shape of the layout
    map_row: Callable[[list[str]], Any]
    diagnose: Callable[[list[str]], FieldError]
    check_fields: Callable[[CdrRow], str | None]      # field filters on a finished CDR row (merged partials)
    partial_info: Callable[[list[str]], PartialInfo | None] | None
    identity: Callable[[str], str]
    map_batch: BatchMapper | None                     # column-at-a-time fast path (None for partial layouts)
    source: str                                       # the generated mapper, for people
    leg_info: Callable[[list[str]], tuple[str, str]] | None = None   # (leg id, other leg id) for leg pairs
    index: dict[Column, int] | None = None            # 0-based position of every column the layout uses


def resolve_columns(layout: Layout, header: Sequence[str] | None, header_line: int) -> dict[Column, int]:
    """0-based index of every column the layout uses; raises :class:`FileLevelError` on a header mismatch."""
    read = layout.read
    used = _used_columns(layout)
    if read.header_row == 0 or header is None:
        names = {name: i for i, name in enumerate(layout.all_columns)}
    else:
        if read.header_match == "exact" and tuple(header) != layout.columns:
            raise FileLevelError("read.header-mismatch", _header_diff(layout.columns, header), header_line)
        names = {}
        for i, name in enumerate(header):
            names.setdefault(name, i)
        missing = [c for c in used if isinstance(c, str) and c not in names]
        if missing:
            raise FileLevelError("read.missing-columns", f"the header lacks column(s) {', '.join(map(repr, missing))} that layout {layout.name!r} uses", header_line)
    out: dict[Column, int] = {}
    for ref in used:
        out[ref] = ref - 1 if isinstance(ref, int) else names[ref]
    return out


def _header_diff(expected: tuple[str, ...], found: Sequence[str]) -> str:
    for i, (want, got) in enumerate(zip(expected, found)):
        if want != got:
            return f"header column {i + 1} is {got[:40]!r}, the layout expects {want!r}"
    return f"the header has {len(found)} columns, the layout expects {len(expected)}"


def _column_filters(layout: Layout) -> list[Filter]:
    """The raw-column filters in the order they run: the leg rule first (it says what a record is)."""
    legs = layout.legs.billable if layout.legs is not None and layout.legs.billable is not None else None
    return ([legs] if legs is not None else []) + [f for f in layout.filters if f.is_column]


def _used_columns(layout: Layout) -> list[Column]:
    refs: list[Column] = [r.column for r in layout.fields.values() if r.column is not None]
    refs += list(layout.identity) + list(layout.attributes.values())
    refs += [f.target for f in _column_filters(layout)]
    if layout.partials is not None:
        p = layout.partials
        refs += [*p.key, p.sequence, p.final_column]
    if layout.legs is not None and layout.legs.pairs is not None:
        refs += [layout.legs.pairs.leg, layout.legs.pairs.other_leg]
    seen: list[Column] = []
    for r in refs:
        if r not in seen:
            seen.append(r)
    return seen


def identity_function(source: str, namespace: str = "") -> Callable[[str], str]:
    """Same value as :func:`engine.cdr.cdr_identity` for a fixed source, a little faster."""
    prefix = identity_prefix(source, namespace)
    sha = hashlib.sha256

    def identity(origin_id: str) -> str:
        return sha((prefix + origin_id).encode("utf-8")).hexdigest()[:32]

    return identity


def compile_layout(
    layout: Layout, header: Sequence[str] | None = None, header_line: int = 1, *, namespace: str = "", only_tenant: str | None = None,
    subscribers: SubscriberTenants | None = None,
) -> CompiledLayout:
    """``namespace``: the submitting tenant, part of every CDR identity (see :func:`engine.cdr.cdr_identity`).
    ``only_tenant``: a record whose tenant is another one is rejected (``record.foreign-tenant``): an MVNO
    submits its own subscribers' CDRs only.  ``subscribers``: the subscriber store's part in telling the
    tenant (engine.mediation.tenants)."""
    index = resolve_columns(layout, header, header_line)
    ctx = CompileContext(layout.numbering, layout.zone)
    converters = {t: r.conversion.compile(ctx) for t, r in layout.fields.items() if r.column is not None}
    identify = layout.tenants.compile(subscribers) if layout.identify_tenant and layout.tenants.default_tenant else None
    identity = identity_function(layout.source, namespace)
    diagnose = _diagnose_function(layout, index, converters)
    exact, _ = _generate(layout, index, converters, identify, identity, diagnose, only_tenant, None)
    map_row, source = _generate(layout, index, converters, identify, identity, diagnose, only_tenant, exact)
    attribute_pairs = [(k, index[c]) for k, c in sorted(layout.attributes.items())]
    holds = layout.partials is not None or (layout.legs is not None and layout.legs.pairs is not None)
    if header is not None and layout.read.header_row:
        width = len(header)
        accepts: Callable[[int], bool] = width.__eq__
    else:
        width, accepts = len(layout.all_columns), layout.accepts_width
    return CompiledLayout(
        layout=layout,
        expected_columns=width,
        accepts=accepts,
        map_row=map_row,
        diagnose=diagnose,
        check_fields=_field_check_function([(n, f) for n, f in enumerate(layout.filters) if not f.is_column]),
        partial_info=_partial_function(layout, index),
        identity=identity,
        map_batch=None if holds else BatchMapper(
            layout, index, converters, _DEFAULTS, identify, attribute_pairs, hashlib.sha256,
            prefix=identity_prefix(layout.source, namespace), only_tenant=only_tenant, column_filters=_column_filters(layout),
            recode=recode_function(layout, index) if layout.column_encodings else None,
        ),
        source=source,
        leg_info=_leg_function(layout, index),
        index=index,
    )


def _generate(layout: Layout, index: dict[Column, int], converters: dict[str, Callable[[str], Any]], identify: Any,
              identity: Callable[[str], str], diagnose: Callable[[list[str]], FieldError], only_tenant: str | None,
              exact: Callable[[list[str]], Any] | None) -> tuple[Callable[[list[str]], Any], str]:
    """Generate the mapping function.  With ``exact`` (the function generated without inlining),
    common conversions are inlined and a failure hands the record to ``exact``; without it every
    conversion is a converter call and a failure names the field (``diagnose``)."""
    ns: dict[str, Any] = {"ConversionError": ConversionError}
    body: list[str] = []
    # what a failed conversion does: the exact mapping, or the diagnosis of the culprit
    ns["_failed"] = exact if exact is not None else None
    fail = "return _failed(row)" if exact is not None else "raise _diagnose(row) from None"

    # 0. columns in an encoding of their own are read in it (engine.mediation.layout column_encodings);
    #    the exact mapping gets the record as it came, and reads them itself
    if layout.column_encodings:
        ns["_recode"] = recode_function(layout, index)
        body += ["    _as_read = row", "    row = _recode(row)"]
        if exact is not None:
            fail = "return _failed(_as_read)"

    # 1. filters on raw columns (the leg rule first): cheapest first, before any conversion
    for n, filt in enumerate(_column_filters(layout)):
        cond, names = filt.condition(f"row[{index[filt.target]}]", f"_v{n}")
        ns.update(names)
        ns[f"_F{n}"] = filt.filter_id
        body += [f"    if {cond}:", f"        return _F{n}"]

    # 2. conversions, one try block: the slow path finds the culprit only when one fails
    body.append("    try:")
    assigned: set[str] = set()
    failures: list[str] = []
    constants: dict[str, str] = {}
    for target, rule in layout.fields.items():
        if rule.column is None:
            ns[f"_k_{target}"] = rule.value
            constants[target] = f"_k_{target}"
            continue
        convert = converters[target]
        expr = f"row[{index[rule.column]}]"
        inline = rule.conversion.inline() if exact is not None else None
        memo = getattr(convert, "memo", None)
        if isinstance(rule.conversion, Text) and convert is str:
            body.append(f"        {target} = {expr}")
        elif inline is not None:
            body.append(f"        {target} = {inline[0].format(v=expr)}")
            failures.append(inline[1].format(t=target))
        elif memo is not None:
            # a memo hit skips the call; results are never empty except for empty input
            ns[f"_c_{target}"], ns[f"_m_{target}"] = convert, memo.get
            body.append(f"        {target} = _m_{target}({expr}) or _c_{target}({expr})")
        else:
            ns[f"_c_{target}"] = convert
            body.append(f"        {target} = _c_{target}({expr})")
        assigned.add(target)

    def ref(name: str) -> str:
        """How the generated code names a field's value: a local, a bound constant or a default literal."""
        if name in assigned:
            return name
        if name in constants:
            return constants[name]
        return repr(_DEFAULTS.get(name, ""))
    body += ["    except (ConversionError, ValueError):", f"        {fail}"]
    if failures:
        body += [f"    if {' or '.join(failures)}:", f"        {fail}"]
    for target, rule in layout.fields.items():
        if rule.required:
            ns[f"_missing_{target}"] = (target,)
            body += [f"    if not {ref(target)}:", f"        raise _missing(_missing_{target})"]
    for target, limit in _LIMITED.items():   # what the store's columns hold
        if target in assigned:
            ns[f"_long_{target}"] = (target, limit)
            body += [f"    if len({target}) > {limit}:", f"        raise _too_long(_long_{target}, {target})"]
    if layout.identity:
        if len(layout.identity) == 1:
            body.append(f"    origin_id = row[{index[layout.identity[0]]}]")
        else:
            # empty trailing parts (an optional column the file does not have) leave no trace
            parts = ", ".join(f"row[{index[c]}]" for c in layout.identity)
            body.append(f"    origin_id = '|'.join(({parts})).rstrip('|')")
        assigned.add("origin_id")
    body += ["    if not origin_id:", "        raise _missing(('origin_id',))"]
    if "origin_id" in _LIMITED:
        body += [f"    if len(origin_id) > {TEXT_LIMITS['origin_id']}:", "        raise _too_long(('origin_id', %d), origin_id)" % TEXT_LIMITS["origin_id"]]

    # 3. filters on converted fields (for partial records they run on the merged CDR instead)
    if layout.partials is None:
        for n, filt in [(n, f) for n, f in enumerate(layout.filters) if not f.is_column]:
            cond, names = filt.condition(ref(filt.target), f"_w{n}")
            ns.update(names)
            ns[f"_G{n}"] = filt.filter_id
            body += [f"    if {cond}:", f"        return _G{n}"]

    # 4. tenant, attributes, identity
    if identify is not None:
        ns["_identify"] = identify
        imsi, a, b = ref("imsi"), ref("a_number"), ref("b_number")
        direction_rule = layout.fields.get("direction")
        if direction_rule is None or direction_rule.column is None:  # a fixed direction picks the served number once, here
            served = b if direction_rule is not None and direction_rule.value == "terminating" else a
        else:
            served = f"({a} if direction == 'originating' else {b})"
        if imsi == repr(""):
            ns["_tenant_memo"] = identify.memo.get
            body.append(f"    tenant = _tenant_memo({served}) or _identify('', {served})")
        else:
            body.append(f"    tenant = _identify({imsi}, {served})")
        assigned.add("tenant")
        if only_tenant is not None:
            ns["_only_tenant"], ns["_foreign"] = only_tenant, _foreign
            body += ["    if tenant != _only_tenant:", "        raise _foreign(tenant, _only_tenant)"]
    if layout.attributes:
        ns["_attributes"] = _attributes_function([(k, index[c]) for k, c in sorted(layout.attributes.items())])
        body.append("    attributes = _attributes(row)")
        assigned.add("attributes")
    ns["_identity"] = identity
    ns["_k_source"] = layout.source
    out = []
    for name in COLUMNS:
        if name == "cdr_id":
            out.append("_identity(origin_id)")
        elif name == "source":
            out.append("_k_source")
        elif name in constants:
            out.append(constants[name])
        elif name in assigned:
            out.append(name)
        else:
            ns[f"_d_{name}"] = _DEFAULTS[name]
            out.append(f"_d_{name}")
    body.append(f"    return ({', '.join(out)})")
    source = "def map_row(row):\n" + "\n".join(body) + "\n"
    ns["_diagnose"] = diagnose
    ns["_missing"] = _missing
    ns["_too_long"] = _too_long
    exec(compile(source, f"<mapper {layout.name}>", "exec"), ns)  # noqa: S102 - see module doc
    return ns["map_row"], source


def recode_function(layout: Layout, index: dict[Column, int]) -> Callable[[list[str]], list[str]]:
    """A copy of the row with each column of ``column_encodings`` read in its own encoding (the file's
    text was decoded in the file's; the bytes are taken back and decoded again); raises ``FieldError``
    (``record.encoding``) when they are not valid in that encoding either."""
    file_encoding = "utf-8" if layout.read.encoding == "utf-8-sig" else layout.read.encoding
    columns = [(index[ref], enc, ref if isinstance(ref, str) else f"column {ref}")
               for ref, enc in layout.column_encodings.items() if ref in index]

    def recode(row: list[str]) -> list[str]:
        out = row
        for i, encoding, name in columns:
            value = row[i] if i < len(row) else ""
            if value.isascii():
                continue
            if out is row:
                out = list(row)
            try:
                out[i] = value.encode(file_encoding, "surrogateescape").decode(encoding)
            except UnicodeError:
                raise FieldError(name, "record.encoding", f"column {name} is not valid {encoding}: {value[:40]!r}") from None
        return out

    return recode


def _missing(target: tuple[str]) -> FieldError:
    return FieldError(target[0], "value.missing", "a required value is empty")


def _too_long(target: tuple[str, int], value: str) -> FieldError:
    return FieldError(target[0], "value.too-long", f"{len(value)} characters, at most {target[1]}: {value[:40]!r}...")


def _foreign(tenant: str, own: str) -> FieldError:
    return FieldError("tenant", "record.foreign-tenant", f"the served subscriber belongs to tenant {tenant!r}, not to {own!r}, which submitted the file")


def _diagnose_function(layout: Layout, index: dict[Column, int], converters: dict[str, Callable[[str], Any]]) -> Callable[[list[str]], FieldError]:
    order = [(t, index[r.column]) for t, r in layout.fields.items() if r.column is not None and t in converters]

    def diagnose(row: list[str]) -> FieldError:
        for target, i in order:
            try:
                converters[target](row[i])
            except ConversionError as exc:
                return FieldError(target, exc.code, exc.message)
            except ValueError as exc:  # a converter's own bug must still end as a reject
                return FieldError(target, "value.invalid", str(exc)[:200])
        return FieldError("record", "record.unconvertible", "a value could not be converted")

    return diagnose


def _attributes_function(pairs: list[tuple[str, int]]) -> Callable[[list[str]], str]:
    """engine.cdr.encode_attributes of the non-empty attribute columns (pairs are sorted by key)."""
    escaped = [(escape_attribute(k) + "=", i) for k, i in pairs]
    if len(escaped) == 1:
        key_eq, i = escaped[0]

        def one(row: list[str]) -> str:
            value = row[i]
            return key_eq + escape_attribute(value) if value else ""

        return one

    def many(row: list[str]) -> str:
        return ";".join(key_eq + escape_attribute(row[i]) for key_eq, i in escaped if row[i])

    return many


def _field_check_function(field_filters: list[tuple[int, Any]]) -> Callable[[CdrRow], str | None]:
    checks = []
    for n, filt in field_filters:
        cond, names = filt.condition(f"cdr[{POSITION[filt.target]}]", "_v")
        checks.append((filt.filter_id, eval(f"lambda cdr, _v: {cond}", {}), names["_v"]))  # noqa: S307 - generated, no layout text

    def check(cdr: CdrRow) -> str | None:
        for filter_id, test, value in checks:
            if test(cdr, value):
                return filter_id
        return None

    return check


def _leg_function(layout: Layout, index: dict[Column, int]) -> Callable[[list[str]], tuple[str, str]] | None:
    pairs = layout.legs.pairs if layout.legs is not None else None
    if pairs is None:
        return None
    leg, other = index[pairs.leg], index[pairs.other_leg]

    def info(row: list[str]) -> tuple[str, str]:
        return row[leg].strip(), row[other].strip()

    return info


def _partial_function(layout: Layout, index: dict[Column, int]) -> Callable[[list[str]], PartialInfo | None] | None:
    rule = layout.partials
    if rule is None:
        return None
    key_idx = [index[c] for c in rule.key]
    seq_idx, final_idx, final_values = index[rule.sequence], index[rule.final_column], rule.final_values

    def info(row: list[str]) -> PartialInfo | None:
        seq_text = row[seq_idx].strip()
        if seq_text in ("", "0"):
            return None
        try:
            seq = int(seq_text)
        except ValueError:
            raise FieldError("partials.sequence", "value.not-integer", f"partial sequence {seq_text[:20]!r} is not a number") from None
        if seq < 1:
            raise FieldError("partials.sequence", "value.negative", f"partial sequence {seq} must be 1 or more")
        return PartialInfo("|".join(row[i] for i in key_idx), seq, row[final_idx] in final_values)

    return info
