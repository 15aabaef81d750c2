"""Column-at-a-time mapping of a batch of regular records: the fast path of the pipeline.

The per-record mapper (``mapper.map_row``) is the reference.  This one transposes a
batch of rows into columns and runs every step as ``map``/``zip``/``compress`` over
C-level callables (memo ``dict.get``, ``int``, ``frozenset.__contains__``, SHA-256),
so the interpreter runs a few dozen steps per batch, plus tight comprehensions,
instead of a whole mapping function per record.

It only takes the easy case: every value converts, no required value is empty.
Anything else returns ``None`` and the pipeline maps that batch record by record,
which produces the rejects with their lines and bytes.  A differential test runs
both paths over random files and requires identical results.
"""

from __future__ import annotations

import hashlib
from itertools import compress, repeat
from operator import and_, itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

from engine.cdr import COLUMNS, MAX_INTEGER, TEXT_LIMITS, escape_attribute
from engine.mediation.conversions import Text
from engine.mediation.filters import Filter
from engine.mediation.layout import FIELD_TYPES, Column, Layout
from engine.mediation.problems import ConversionError

_FIRST_32 = itemgetter(slice(32))

try:
    from engine.mediation._cdrid import cdr_ids as _cdr_ids
except ImportError:  # pragma: no cover - a build without a C compiler
    _cdr_ids = None


class BatchMapper:
    def __init__(
        self,
        layout: Layout,
        index: dict[Column, int],
        converters: dict[str, Callable[[str], Any]],
        defaults: dict[str, Any],
        identify: Callable[[str, str], str] | None,
        attribute_pairs: list[tuple[str, int]],
        sha256: Callable[[bytes], Any],
        *,
        prefix: str,
        only_tenant: str | None = None,
        column_filters: Sequence[Filter] = (),
        recode: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """``column_filters``: the raw-column filters in order (the leg rule first), as the record mapper runs them."""
        self.column_filters: list[tuple[Filter, int]] = [(f, index[f.target]) for f in column_filters]
        self.field_filters: list[Filter] = [f for f in layout.filters if not f.is_column]
        self.steps: list[tuple[str, int, str, Callable[[str], Any]]] = []   # (field, column, mode, converter)
        self.constants: dict[str, Any] = {}
        for target, rule in layout.fields.items():
            if rule.column is None:
                self.constants[target] = rule.value
                continue
            convert = converters[target]
            if isinstance(rule.conversion, Text) and convert is str:
                mode = "text"
            elif rule.conversion.inline() is not None:
                mode = "int"
            elif getattr(convert, "memo", None) is not None:
                mode = "memo"
            else:
                mode = "call"
            self.steps.append((target, index[rule.column], mode, convert))
        self.required = [t for t, r in layout.fields.items() if r.required]
        self.limits = [(t, TEXT_LIMITS[t]) for t, r in layout.fields.items()
                       if r.column is not None and FIELD_TYPES[t] == "text" and t in TEXT_LIMITS]
        self.identity_columns = [index[c] for c in layout.identity]
        self.defaults = defaults
        self.identify = identify
        direction = layout.fields.get("direction")
        self.direction_fixed = direction is None or direction.column is None
        self.served_is_b = direction is not None and direction.column is None and direction.value == "terminating"
        self.attribute_pairs = attribute_pairs
        self.prefix = prefix            # engine.cdr.identity_prefix of the source (and submitting tenant)
        self.only_tenant = only_tenant  # another tenant in the batch: the record path rejects those records
        self.source = layout.source
        # columns in their own encoding (mapper.recode_function does it per record: here per column)
        self.encoded = [(index[ref], enc) for ref, enc in layout.column_encodings.items() if ref in index]
        self.file_encoding = "utf-8" if layout.read.encoding == "utf-8-sig" else layout.read.encoding
        self.sha256 = sha256
        self.hexdigest = type(sha256(b"")).hexdigest
        self.cdr_ids = _cdr_ids if sha256 is hashlib.sha256 else None   # the same hash, in one C call per batch
        used = {i for _, i in self.column_filters} | {s[1] for s in self.steps} | set(self.identity_columns) | {i for _, i in attribute_pairs}
        self.used = sorted(used)   # every column a batch needs; identity makes it never empty
        # the columns still read once the raw-column filters have run
        self.after_filters = sorted({st[1] for st in self.steps} | set(self.identity_columns) | {i for _, i in attribute_pairs})

    def __call__(self, rows: Sequence[list[str]]) -> tuple[list[tuple], dict[str, int]] | None:
        """Map a batch of parsed records (lists of every column's text)."""
        if not rows:
            return [], {}
        width, n = len(rows[0]), len(rows)   # every row has this width (the caller checks)
        try:
            return self._map({i: [r[i] for r in rows] if i < width else [""] * n for i in self.used})
        except (ConversionError, ValueError, TypeError, UnicodeError):
            return None

    def map_columns(self, columns: Mapping[int, Sequence[Any]]) -> tuple[list[tuple], dict[str, int]] | None:
        """Map a batch given as its columns (index -> values; every index of ``used``)."""
        try:
            return self._map(columns)
        except (ConversionError, ValueError, TypeError, UnicodeError):
            return None

    def _map(self, raw: Mapping[Any, Sequence[Any]]) -> tuple[list[tuple], dict[str, int]] | None:
        filtered: dict[str, int] = {}
        if self.encoded:
            raw = dict(raw)
            for i, encoding in self.encoded:
                col = raw[i]
                if not "".join(col).isascii():   # UnicodeError (not valid there either): the record path rejects it
                    raw[i] = [v if v.isascii() else v.encode(self.file_encoding, "surrogateescape").decode(encoding) for v in col]
        # raw-column filters first, their masks combined (a record counts for the first that drops it);
        # then one selection of the columns still needed: those only filters read are left behind
        kept = _combined_masks(((filt, raw[i]) for filt, i in self.column_filters), filtered)
        raw = {i: raw[i] for i in self.after_filters}
        if kept is not None:
            if True not in kept:
                return [], filtered
            raw = _select(raw, kept)
        if not raw[self.after_filters[0]]:
            return [], filtered
        values: dict[Any, Sequence[Any]] = {}
        for target, i, mode, convert in self.steps:
            col = raw[i]
            if mode == "text":
                values[target] = col
            elif mode == "int":
                if "" in col:
                    return None
                try:
                    ints = list(map(int, col))
                except ValueError:   # "2.008": the converter reads what int() does not, or the record path names it
                    ints = list(map(convert, col))
                if ints and (min(ints) < 0 or max(ints) > MAX_INTEGER):
                    return None
                values[target] = ints
            elif mode == "memo":
                whole = getattr(convert, "column", None)
                got = whole(col) if whole is not None else None
                values[target] = got if got is not None else _memo_column(convert.memo, col, convert)  # type: ignore[attr-defined]
            else:
                values[target] = list(map(convert, col))
        for target in self.required:
            column = values.get(target)
            if column is None or not all(column):
                return None
        for target, limit in self.limits:   # what the store's columns hold: the record path rejects the rest
            if values[target] and max(map(len, values[target])) > limit:
                return None
        parts = [raw[i] for i in self.identity_columns]
        while len(parts) > 1 and not any(parts[-1]):   # an optional column the file leaves out: no part of the identity
            parts.pop()
        if len(parts) == 1:
            origin: Sequence[str] = parts[0]
        elif all(map(all, parts[1:])):
            origin = list(map("|".join, zip(*parts)))
        else:   # some records have empty trailing parts: the record mapper's rule, per record
            origin = [o.rstrip("|") for o in map("|".join, zip(*parts))]
        if not all(origin) or max(map(len, origin)) > TEXT_LIMITS["origin_id"]:
            return None
        values["origin_id"] = origin
        raw = {i: raw[i] for _, i in self.attribute_pairs}   # all the raw columns still needed
        # the field filters' masks, combined (a field that is a constant is the same for every record); the records
        # they drop are left out of the finished rows, once, rather than out of every column (they are few)
        kept = _combined_masks(((filt, values.get(filt.target) or [self._constant(filt.target)] * len(origin))
                                for filt in self.field_filters), filtered)
        if kept is not None and True not in kept:
            return [], filtered
        n = len(origin)
        if self.identify is not None:
            tenants = values["tenant"] = self._tenants(values, n)
            if self.only_tenant is not None and tenants.count(self.only_tenant) != n:
                return None
        if self.attribute_pairs:
            values["attributes"] = self._attributes(raw, n)
        ids = self._identities(values["origin_id"])
        out_columns: list[Any] = []
        for name in COLUMNS:
            if name == "cdr_id":
                out_columns.append(ids)
            elif name == "source":
                out_columns.append(repeat(self.source))
            elif name in values:
                out_columns.append(values[name])
            else:
                out_columns.append(repeat(self._constant(name)))
        rows = zip(*out_columns)
        return (list(compress(rows, kept)) if kept is not None else list(rows)), filtered

    def _identities(self, origins: Sequence[str]) -> list[str]:
        """engine.cdr.cdr_identity of every origin id: in one C call (``_cdrid.c``) when it is built, else one
        encode of the whole column, then C-level maps over hashlib."""
        sha, prefix = self.sha256, self.prefix
        if self.cdr_ids is not None:
            return self.cdr_ids(prefix, origins)
        parts = (prefix + ("\n" + prefix).join(origins)).encode().split(b"\n")
        if len(parts) != len(origins):   # a line break inside an origin id: one by one
            return [sha((prefix + o).encode()).hexdigest()[:32] for o in origins]
        return list(map(_FIRST_32, map(self.hexdigest, map(sha, parts))))

    def _constant(self, name: str) -> Any:
        return self.constants[name] if name in self.constants else self.defaults.get(name, "")

    def _tenants(self, values: dict[Any, Sequence[Any]], n: int) -> list[str]:
        identify = self.identify
        assert identify is not None
        a = values.get("a_number") or [self._constant("a_number")] * n
        b = values.get("b_number") or [self._constant("b_number")] * n
        if self.direction_fixed:
            served = b if self.served_is_b else a
        else:
            served = [x if d == "originating" else y for x, y, d in zip(a, b, values["direction"])]
        imsi = values.get("imsi")
        if imsi is None and not self._constant("imsi"):
            got = identify.column(served)  # type: ignore[attr-defined]
            return got if got is not None else list(map(identify, repeat("", n), served))
        imsis = imsi or [self._constant("imsi")] * n
        identify.prefetch(imsis, served)  # type: ignore[attr-defined]
        return list(map(identify, imsis, served))

    def _attributes(self, raw: dict[Any, Sequence[Any]], n: int) -> list[str]:
        """engine.cdr.encode_attributes per record (pairs are sorted by key; empty values are left out)."""
        pairs = [(escape_attribute(k) + "=", raw[i]) for k, i in self.attribute_pairs]
        joined = "".join("".join(col) for _, col in pairs)
        if "%" in joined or ";" in joined or "=" in joined:   # some value needs escaping: every value goes through it
            pairs = [(key_eq, list(map(escape_attribute, col))) for key_eq, col in pairs]
        if len(pairs) == 1:
            key_eq, col = pairs[0]
            return [key_eq + v if v else "" for v in col]
        return [";".join(key_eq + col[r] for key_eq, col in pairs if col[r]) for r in range(n)]


def _combined_masks(columns: Iterable[tuple[Filter, Sequence[Any]]], filtered: dict[str, int]) -> list[bool] | None:
    """Each filter's keep mask over its column, combined into one (None: every record kept); a record
    counts for the first filter that drops it, in ``filtered`` by filter id."""
    kept: list[bool] | None = None
    for filt, column in columns:
        keep = filt.keep_mask(column)
        if False in keep:
            dropped = keep.count(False) if kept is None else list(compress(keep, kept)).count(False)
            if dropped:
                filtered[filt.filter_id] = filtered.get(filt.filter_id, 0) + dropped
            kept = keep if kept is None else list(map(and_, kept, keep))
    return kept


def _select(columns: Mapping[Any, Sequence[Any]], keep: list[bool]) -> dict[Any, Sequence[Any]]:
    return {k: list(compress(v, keep)) for k, v in columns.items()}


def _memo_column(memo: dict[Any, Any], inputs: Sequence[Any], compute: Callable[[Any], Any]) -> list[Any]:
    """``compute`` over a column through its memo: all hits is one C-level ``map``; otherwise the
    misses are computed once per distinct value (``compute`` fills the memo) and the column looked up again."""
    try:
        return list(map(memo.__getitem__, inputs))
    except KeyError:
        pass
    misses = set(inputs).difference(memo)
    fill = getattr(compute, "fill", None)
    if fill is not None:
        fill(misses)
    else:
        for value in misses:
            compute(value)
    got = list(map(memo.get, inputs))
    if None not in got:
        return got
    return _fill_misses(got, inputs, compute)   # the memo reached its bound and was emptied meanwhile


def _fill_misses(got: list[Any], inputs: Sequence[Any], compute: Callable[[Any], Any]) -> list[Any]:
    """Replace the memo misses (None) by computed values; the scan for them runs in C."""
    i = -1
    while True:
        try:
            i = got.index(None, i + 1)
        except ValueError:   # no more misses (a failing compute raises, and must, past this)
            return got
        got[i] = compute(inputs[i])   # the converter memoises: a repeat later in the batch is cheap
