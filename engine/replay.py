"""QA replay: rate a golden folder's CDRs and compare with its expected output.

A golden folder holds::

    plans/             the plan set (any layout the loader accepts)
    cdrs.cdr.csv       input CDRs in the normalised CDR format (engine.cdr)
    subscribers.yaml   optional: which plan and bundle counters each subscriber has
    rules/             optional: barring rules (``kind: barring``) the case's call attempts go through
    expected.jsonl     one RatedCdr.as_dict() per input CDR, in input order
    README.md          what the case shows

``subscribers.yaml``::

    default_plan: TP_RETAIL_M            # for CDRs nobody is assigned to
    tenants: {mvno-alpha: TP_WS_ALPHA}   # by the CDR's tenant (wholesale)
    subscribers:                         # by a_number
      "33612000001": {plan: TP_RETAIL_M, bundles: {BN_VOICE_300: 18000}}
      "33612000002": {plan: TP_RETAIL_M, flags: [bar_international], credit_limit: "5.00", currency: EUR,
                      status: active, tenant: mno}     # what barring rules see

A CDR attribute ``plan=...`` overrides all of these.  Bundle counters carry
from one CDR to the next of the same subscriber, in file order, exactly as a
rating run would.  Rejected input rows (bad values) are rated ``rejected``
with their line number, so they are part of the comparison too.  With barring
rules, each CDR of a listed subscriber is an attempt the rules decide first,
through the same decision as the server's AuthorizeCall (credit used is what
the case charged the subscriber so far); a barred one is expected as
``{"cdr_id": ..., "status": "barred", "rule": "BAR_...", "reason": "..."}``.
"""

from __future__ import annotations

import json
from operator import itemgetter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence
from xml.sax.saxutils import escape, quoteattr

from engine.cdr import COLUMNS, CdrValueError, MediatedCdr, from_row
from engine.columns import column_of
from engine.csvrows import CsvRows
from engine.gcpause import collector_paused
from engine.money import AmountError, format_amount, minor_units, parse_amount
from engine.plans import compile_plan_set, load_plan_set
from engine.rating.compiled import CompiledVersion
from engine.rating.evaluator import RATED, REJECTED, Evaluator, Row
from engine.rating.result import RatedCdr
from engine.rating.whatif import plan_attribute
from engine.yamlio import Fields, MarkedMap, Problem, format_problems, load_file

try:   # each rated CDR's expected line written and compared in C (engine/_replaylines.c), when it is built
    from engine import _replaylines
except ImportError:  # pragma: no cover - a build without a C compiler: every CDR's line is full_form's
    _replaylines = None   # type: ignore[assignment]

_CLineWriter = _replaylines.LineWriter if _replaylines is not None else None

BARRED = "barred"
_A, _TENANT, _ATTRS = COLUMNS.index("a_number"), COLUMNS.index("tenant"), COLUMNS.index("attributes")
_CHARGE = itemgetter(1)   # of an evaluator Row
CDR_FILE = "cdrs.cdr.csv"
EXPECTED_FILE = "expected.jsonl"
SUBSCRIBERS_FILE = "subscribers.yaml"


@dataclass
class CdrDiff:
    index: int
    cdr_id: str
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    explanation: str = ""

    def render(self) -> str:
        out = [f"  CDR #{self.index + 1} {self.cdr_id[:16]}:"]
        e, a = self.expected or {}, self.actual or {}
        if not self.expected:
            out.append("    not expected (expected.jsonl has fewer lines)")
        if not self.actual:
            out.append("    missing from the actual output")
        if e and a:
            if e.get("status") != a.get("status"):
                out.append(f"    status: expected {e.get('status')}, actual {a.get('status')} {a.get('reason', '')}".rstrip())
            if e.get("charge") != a.get("charge") or e.get("currency") != a.get("currency"):
                out.append(f"    charge: expected {e.get('charge')} {e.get('currency', '')}, actual {a.get('charge')} {a.get('currency', '')}")
            for key in sorted(set(e) | set(a)):
                if key in ("status", "charge", "charge_micros", "currency", "spans", "reason") or e.get(key) == a.get(key):
                    continue
                out.append(f"    {key}: expected {json.dumps(e.get(key))}, actual {json.dumps(a.get(key))}")
            if e.get("reason") != a.get("reason") and e.get("status") == a.get("status"):
                out.append(f"    reason: expected {e.get('reason')!r}, actual {a.get('reason')!r}")
            if e.get("spans") != a.get("spans"):
                out.append("    spans expected: " + _spans(e.get("spans")))
                out.append("    spans actual:   " + _spans(a.get("spans")))
        if self.explanation:
            out.append(f"    why (actual): {self.explanation}")
        return "\n".join(out)


def _spans(spans: Any) -> str:
    if not spans:
        return "-"
    return " | ".join(f"{s['band']} {s['rate']} {s['start']}-{s['end']} billed {s['billed_units']}"
                      f"{' bundle ' + str(s['bundle_units']) if s.get('bundle_units') else ''} = {s['charge']}" for s in spans)


@dataclass
class ReplayResult:
    folder: Path
    problems: list[Problem] = field(default_factory=list)
    diffs: list[CdrDiff] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)                # per CDR: what the evaluator's batch loop answered
    count: int = 0
    charged_micros: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.diffs

    @property
    def name(self) -> str:
        return self.folder.name

    def render(self) -> str:
        if self.problems:
            return f"FAIL {self.name}: the case cannot run\n" + format_problems(self.problems)
        if not self.diffs:
            return f"ok   {self.name}: {self.count} CDRs match"
        head = f"FAIL {self.name}: {len(self.diffs)} of {self.count} CDRs differ"
        return "\n".join([head, *(d.render() for d in self.diffs)])


@dataclass
class Assignments:
    default_plan: str = ""
    tenants: dict[str, str] = field(default_factory=dict)
    subscribers: dict[str, str] = field(default_factory=dict)
    bundles: dict[str, dict[str, int]] = field(default_factory=dict)
    # what barring rules see of a subscriber (flags, credit limit, status, tenant), by a_number
    profiles: dict[str, SimpleNamespace] = field(default_factory=dict)

    def plan_for(self, cdr: MediatedCdr | Sequence[Any]) -> str:
        """The plan of a CDR or of a row of the normalised layout."""
        if not isinstance(cdr, MediatedCdr):
            return self.plan_for_row(cdr)
        return cdr.attributes.get("plan") or self.subscribers.get(cdr.a_number) or self.tenants.get(cdr.tenant) or self.default_plan

    def plan_for_row(self, row: Sequence[Any]) -> str:
        return (plan_attribute(row[_ATTRS] or "") or self.subscribers.get(row[_A]) or self.tenants.get(row[_TENANT])
                or self.default_plan)

    __call__ = plan_for_row   # a plan assignment of rows (engine.rating.whatif.PlanFor)

    def plans_of_rows(self, rows: Sequence[Sequence[Any]], header: Sequence[str] = COLUMNS) -> str | list[str]:
        """The plan of every row: one for all when nothing assigns plans per subscriber, tenant or CDR (then
        nothing per row is looked at), else each row's."""
        i_attrs = header.index("attributes") if "attributes" in header else -1
        if not self.subscribers and not self.tenants and (i_attrs < 0 or not _any_plan_attribute(rows, i_attrs)):
            return self.default_plan
        if tuple(header) == COLUMNS:
            width = len(COLUMNS)
            return [self.plan_for_row(row) if len(row) == width else _plan_of(self, header, row) for row in rows]
        return [_plan_of(self, header, row) for row in rows]


def load_assignments(path: Path, problems: list[Problem]) -> Assignments:
    out = Assignments()
    if not path.exists():
        return out
    doc = load_file(path, problems)
    if doc is None:
        return out
    f = Fields(doc, "subscribers", problems)
    out.default_plan = f.optional("default_plan", str, default="")
    out.tenants = {str(k): str(v) for k, v in (f.optional("tenants", dict, default={}) or {}).items()}
    subs = f.optional("subscribers", dict, default={}) or {}
    f.done()
    for number, spec in subs.items():
        sf = Fields(spec, f"subscribers.{number}", problems, fallback=subs.mark_of(number) if isinstance(subs, MarkedMap) else None)
        plan = sf.optional("plan", str)
        bundles = sf.optional("bundles", dict, default={}) or {}
        flags = sf.optional("flags", list, default=[]) or []
        limit = sf.optional("credit_limit", str)
        currency = sf.optional("currency", str, default="")
        status = sf.optional("status", str, default="active")
        tenant = sf.optional("tenant", str, default="")
        sf.done()
        if plan:
            out.subscribers[str(number)] = plan
        if bundles:
            out.bundles[str(number)] = {str(k): int(v) for k, v in bundles.items()}
        try:
            limit_micros = parse_amount(limit) if limit is not None else None
        except AmountError as exc:
            problems.append(Problem.at(sf.node.mark_of("credit_limit"), "value.amount", f"subscribers.{number}.credit_limit: {exc}"))
            limit_micros = None
        out.profiles[str(number)] = SimpleNamespace(
            msisdn=str(number), tenant_id=tenant, tariff_plan=plan or "", barring_flags=tuple(str(x) for x in flags),
            credit_limit_micros=limit_micros, credit_currency=currency, status=status)
    return out


def _header(header: list[str], path: Path, problems: list[Problem]) -> list[str]:
    """The CDR file's header (a problem when it lacks a column every CDR needs)."""
    missing = [c for c in ("cdr_id", "source", "origin_id", "service", "start_time") if c not in header]
    if missing:
        problems.append(Problem(str(path), 1, 1, "cdr.header", f"header lacks column(s): {', '.join(missing)}"))
    return header


def _barring(folder: Path, problems: list[Problem]) -> Any:
    """The case's barring rules (``rules/`` in the folder), or None when it has none."""
    rules = folder / "rules"
    if not rules.is_dir():
        return None
    from engine.eventrules import load_rules

    book = load_rules([rules], problems)
    return book.barring() if book.barring_table.rules else None


# what one chunk of rated CDRs is handed to (replay's comparison, --update's writer, a test's per-CDR oracle): the
# evaluator, the chunk's line numbers, rows, plans (one for all or one per row), what the evaluator answered, and
# the barred CDRs' output by position in the chunk
EachChunk = Callable[[Evaluator, list[str], list[int], Sequence[Sequence[str]], "str | list[str]", list[Row],
                      dict[int, dict[str, Any]]], None]


def rate_folder(folder: Path, each_chunk: EachChunk | None = None) -> ReplayResult:
    """Rate a case's CDRs in file order, bundle counters carried from CDR to CDR, through the one evaluator;
    ``each_chunk`` is handed each chunk rated (see :data:`EachChunk`).

    With barring rules in the case, each CDR of a listed subscriber is first authorised, as AuthorizeCall
    does; a barred one is not rated.
    """
    folder = Path(folder)
    result = ReplayResult(folder)
    # a large plan set is many small objects (50,000 prefixes: strings, dicts, lists) in few cycles: the collector
    # would walk them again and again while they are built; the cycles there are are found when it is restored
    with collector_paused():
        plan_set, problems = load_plan_set([folder / "plans"], root=folder)
        result.problems.extend(problems)
        assignments = load_assignments(folder / SUBSCRIBERS_FILE, result.problems)
    barring = _barring(folder, result.problems)
    cdr_path = folder / CDR_FILE
    if not cdr_path.exists():
        result.problems.append(Problem(str(cdr_path), 1, 1, "file.missing", "the case has no input CDR file"))
    if result.problems or plan_set is None:
        return result
    with collector_paused():   # a large case is many small acyclic rows and results (see engine.gcpause)
        _rate_case(result, plan_set, assignments, barring, cdr_path, each_chunk)
    return result


# at most this many rows read and rated at a time: the file is streamed (a plain block of the file, about 1 MiB,
# comes as one chunk of columns, see engine.csvrows), and a chunk's rows stay in the CPU caches while rated
CHUNK_ROWS = 50_000


def _rate_case(result: ReplayResult, plan_set: Any, assignments: Assignments, barring: Any, cdr_path: Path,
               each_chunk: EachChunk | None) -> None:
    evaluator = Evaluator(compile_plan_set(plan_set))
    states: dict[str, dict[str, int]] = {k: dict(v) for k, v in assignments.bundles.items()}
    used: dict[str, int] = {}   # credit used per subscriber so far, for barring on credit
    with cdr_path.open("rb") as stream:
        records = CsvRows(stream)   # csv.reader's records, plain blocks split in C (see engine.csvrows)
        header = _header(records.header, cdr_path, result.problems)
        if result.problems:
            return
        # line numbers name a rejected row (a row of the wrong width is kept: it is rejected)
        for lines, rows in records.chunks(CHUNK_ROWS):
            plans: str | list[str] = assignments.plans_of_rows(rows, header)
            barred: dict[int, dict[str, Any]] = {}
            if barring is None:
                out = evaluator.rate_rows(rows, plans, states, header)   # wallets by a_number
            else:
                out = _rate_with_barring(evaluator, barring, assignments, header, rows, plans, states, barred, used)
            result.rows.extend(out)
            result.count += len(rows)
            result.charged_micros += sum(map(_CHARGE, out))   # a row not rated carries a charge of 0
            if each_chunk is not None:
                each_chunk(evaluator, header, lines, rows, plans, out, barred)


def full_form(evaluator: Evaluator, header: Sequence[str], line: int, row: Sequence[str], plan: str, r: Row,
              barred: dict[str, Any] | None) -> tuple[dict[str, Any], RatedCdr | None]:
    """One CDR's expected-output form as a dict, and its RatedCdr (None: rejected, barred) -- priced again by
    :meth:`Evaluator.detail`, for the explanation of a CDR that differs (and the rows :class:`LineWriter` leaves)."""
    if barred is not None:
        return barred, None
    if r[0] == REJECTED:
        return {"cdr_id": f"line-{line}", "status": "rejected", "reason": r[2]}, None
    rated = evaluator.detail(row, plan, r[3], header)
    return rated.as_dict(), rated


def canonical(form: dict[str, Any]) -> str:
    """The text of one expected.jsonl line (what ``--update`` writes)."""
    return json.dumps(form, sort_keys=True, ensure_ascii=False)


def _column(rows: Sequence[Sequence[str]], k: int) -> list[str]:
    """Column ``k`` of the rows; "" for a row too short to hold it (a rejected row), every row's without the column."""
    if k < 0:
        return [""] * len(rows)
    try:
        return column_of(rows, k)
    except IndexError:   # a row too short to hold the column
        return [row[k] if len(row) > k else "" for row in rows]


def _version_facts(v: CompiledVersion) -> tuple[str, int, str, int, dict[str, str], Callable[[str], tuple[str, str]]]:
    """What the C line writer reads of a plan version, once per version: (currency, its minor-unit digits, plan id,
    version, the prefix index's groups, its lookup)."""
    return v.currency, minor_units(v.currency), v.plan_id, v.version, v.index.groups, v.index.lookup


def _columns(rows: Sequence[Sequence[str]], header: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The cdr_id, service and b_number columns a CDR's line reads."""
    ids, services, numbers = (_column(rows, header.index(c) if c in header else -1) for c in ("cdr_id", "service", "b_number"))
    return ids, services, numbers


# a CDR whose line differs from its expected line as text: (position in the chunk, the expected line's number (0:
# none), the expected line's bytes (None: beyond the end of the file), the CDR's line (None: full_form's, not written))
Mismatch = tuple[int, int, "bytes | None", "str | None"]


class LineWriter:
    """Every CDR's expected.jsonl line, :func:`canonical` of its :func:`full_form`, a chunk at a time.

    A row the batch loops rated (charge, units, the one span of a memoised price or the spans of a call priced by
    parts, bundle use and discount lines are in the evaluator's row, as RateCdrs' reply writer reads them) is written
    in C (engine/_replaylines.c) without pricing again, and compared there with its expected line, so only the lines
    that differ come back.  Rows priced the per-CDR way (no memoised form kept), unrated ones and a CDR without an id
    of its own go through :func:`full_form`, as every row does in a build without the C module."""

    def __init__(self) -> None:
        self._c = _CLineWriter(RATED, _version_facts) if _CLineWriter is not None else None

    def lines(self, evaluator: Evaluator, header: Sequence[str], lines: list[int], rows: Sequence[Sequence[str]],
              plans: str | list[str], out: list[Row], barred: dict[int, dict[str, Any]]) -> list[str]:
        """The chunk's lines (what ``--update`` writes)."""
        text: list[str | None] = self._c.lines(out, *_columns(rows, header)) if self._c is not None else [None] * len(out)
        return [t if t is not None else canonical(full_form(evaluator, header, lines[n], rows[n], plans if isinstance(plans, str)
                                                            else plans[n], out[n], barred.get(n))[0])
                for n, t in enumerate(text)]

    def mismatches(self, out: list[Row], rows: Sequence[Sequence[str]], header: Sequence[str],
                   expected: "_ExpectedLines") -> Iterator[Mismatch]:
        """The chunk's CDRs against the next lines of ``expected``: each that may differ (without the C module, every
        CDR, its line not written)."""
        if self._c is None:
            for k in range(len(out)):
                got = expected.next_line()
                yield (k, 0, None, None) if got is None else (k, got[0], got[1], None)
            return
        columns = _columns(rows, header)
        k = 0
        while True:
            with expected.held() as data:
                k, expected.pos, expected.line, found = self._c.compare(out, *columns, k, data, expected.pos, expected.line,
                                                                        expected.eof)
            yield from found
            if k >= len(out):
                return
            expected.read_more()   # the next line is not wholly read yet


class _ExpectedLines:
    """expected.jsonl read a block at a time into one buffer (the C writer compares the lines in ``data[pos:size]``):
    lines split at "\\n" (a "\\r" before it dropped), a line that is blank once stripped skipped."""

    BLOCK = 1 << 22

    def __init__(self, path: Path) -> None:
        self.stream = path.open("rb", buffering=0)   # read straight into the buffer
        self.data = bytearray(self.BLOCK)
        self.size = 0      # bytes of data read
        self.pos = 0       # where the next line starts in data
        self.line = 0      # lines read so far
        self.eof = False   # data holds the end of the file

    def read_more(self) -> None:
        """The unread rest moved to the front of the buffer, the buffer filled after it (made larger for a line
        longer than the buffer)."""
        rest = self.size - self.pos
        if self.pos:
            self.data[:rest] = self.data[self.pos:self.size]
        if rest == len(self.data):
            self.data.extend(bytes(len(self.data)))
        read = self.stream.readinto(memoryview(self.data)[rest:])
        self.size, self.pos = rest + (read or 0), 0
        if not read:
            self.eof = True
            self.stream.close()

    def held(self) -> memoryview:
        """The bytes read, as the C writer reads them (release it before the next :meth:`read_more`)."""
        return memoryview(self.data)[:self.size]

    def next_line(self) -> tuple[int, bytes] | None:
        """(number, bytes) of the next line that is not blank; None at the end of the file."""
        while True:
            end = self.data.find(b"\n", self.pos, self.size)
            if end < 0:
                if not self.eof:
                    self.read_more()
                    continue
                if self.pos >= self.size:
                    return None
                end = self.size
            raw = bytes(self.data[self.pos:end])
            self.pos = min(end + 1, self.size)
            self.line += 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if raw.decode("utf-8", "surrogateescape").strip():   # (bytes that are not UTF-8: not blank, reported)
                return self.line, raw

    def close(self) -> None:
        self.stream.close()


def _any_plan_attribute(rows: Sequence[Sequence[str]], i_attrs: int) -> bool:
    """Does any row's attributes cell name a plan?  The cells joined by a character "plan=" does not hold, searched
    once (a row too short to have the cell: cell by cell)."""
    try:
        return "plan=" in "\n".join(column_of(rows, i_attrs))
    except (IndexError, TypeError):   # a short row, or a typed cell (None)
        return any("plan=" in (row[i_attrs] or "") for row in rows if len(row) > i_attrs)


def _plan_of(assignments: Assignments, header: Sequence[str], row: Sequence[str]) -> str:
    cells = dict(zip(header, row))
    return (plan_attribute(cells.get("attributes", "")) or assignments.subscribers.get(cells.get("a_number", ""))
            or assignments.tenants.get(cells.get("tenant", "")) or assignments.default_plan)


def _rate_with_barring(evaluator: Evaluator, barring: Any, assignments: Assignments, header: list[str], rows: Sequence[Sequence[str]],
                       plans: str | list[str], states: dict[str, dict[str, int]], barred: dict[int, dict[str, Any]],
                       used: dict[str, int]) -> list[Row]:
    """CDR by CDR: a listed subscriber's attempt is authorised first (credit used = what replay charged it so far)."""
    col = {name: i for i, name in enumerate(header)}
    out: list[Row] = []
    for n, (row, plan) in enumerate(zip(rows, [plans] * len(rows) if isinstance(plans, str) else plans)):
        profile = assignments.profiles.get(row[col["a_number"]]) if len(row) == len(header) else None
        if profile is not None:
            try:
                cdr = from_row(dict(zip(header, row)))
            except CdrValueError:
                cdr = None
            if cdr is not None:
                sub = SimpleNamespace(**{**vars(profile), "tariff_plan": plan, "tenant_id": profile.tenant_id or cdr.tenant})
                decision, _group = evaluator.authorise(barring, sub, cdr.b_number, cdr.service.value, False, cdr.visited_network,
                                                       cdr.start_time, used.get(cdr.a_number, 0))
                if not decision.allowed:
                    barred[n] = {"cdr_id": cdr.cdr_id, "status": "barred", "rule": decision.rule_id or "", "reason": decision.reason}
                    out.append((BARRED, 0, decision.reason, None, None, "", "", 0, "", None))
                    continue
        [r] = evaluator.rate_rows([row], [plan], states, header)
        if r[0] == RATED and profile is not None:
            used[profile.msisdn] = used.get(profile.msisdn, 0) + r[1]
        out.append(r)
    return out


def replay_folder(folder: Path | str) -> ReplayResult:
    """Rate the folder's CDRs and compare with expected.jsonl: each CDR's line as :class:`LineWriter` writes it,
    compared with the expected line as text; a line that differs as text is compared as JSON (a re-formatted but
    equal file passes), and a CDR that differs gets its full form and explanation (:func:`full_form`)."""
    folder = Path(folder)
    expected_path = folder / EXPECTED_FILE
    if not expected_path.exists():
        result = rate_folder(folder)
        if not result.problems:
            result.problems.append(Problem(str(expected_path), 1, 1, "file.missing", "no expected output; run with --update to create it"))
        return result
    comparison = _Comparison(expected_path)
    try:
        result = rate_folder(folder, comparison.chunk)
        if not result.problems:
            comparison.finish(result)
    finally:
        comparison.expected.close()
    return result


class _Comparison:
    """expected.jsonl against the CDRs rated, a chunk at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.expected = _ExpectedLines(path)
        self.writer = LineWriter()
        self.done = 0
        self.diffs: list[CdrDiff] = []
        self.problems: list[Problem] = []

    def _decoded(self, number: int, raw: bytes) -> Any:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.append(Problem(str(self.path), number, exc.start + 1, "replay.bad-json",
                                         f"not UTF-8 text: {exc.reason}"))
            return _BAD

    def _parsed(self, number: int, line: str) -> Any:
        try:
            return json.loads(line)
        except json.JSONDecodeError as exc:
            self.problems.append(Problem(str(self.path), number, exc.colno, "replay.bad-json", exc.msg))
            return _BAD

    def chunk(self, evaluator: Evaluator, header: list[str], lines: list[int], rows: Sequence[Sequence[str]],
              plans: str | list[str], out: list[Row], barred: dict[int, dict[str, Any]]) -> None:
        base = self.done
        self.done += len(out)
        for k, number, raw, text in self.writer.mismatches(out, rows, header, self.expected):
            full = None
            if text is None:   # a line full_form writes
                full = full_form(evaluator, header, lines[k], rows[k], plans if isinstance(plans, str) else plans[k], out[k],
                                 barred.get(k))
                text = canonical(full[0])
            e = None
            if raw is not None:
                line = self._decoded(number, raw)
                if line is _BAD or line == text:
                    continue
                e = self._parsed(number, line)
                if e is _BAD or e == json.loads(text):
                    continue
            form, rated = full or full_form(evaluator, header, lines[k], rows[k], plans if isinstance(plans, str) else plans[k],
                                            out[k], barred.get(k))
            if e != form:
                self.diffs.append(CdrDiff(base + k, (form or e or {}).get("cdr_id", "?"), e, form,
                                          rated.explanation if rated is not None else ""))

    def finish(self, result: ReplayResult) -> None:
        i = self.done
        while (got := self.expected.next_line()) is not None:   # expected lines beyond the CDRs
            line = self._decoded(*got)
            e = self._parsed(got[0], line) if line is not _BAD else _BAD
            if e is not _BAD and e is not None:
                self.diffs.append(CdrDiff(i, (e or {}).get("cdr_id", "?"), e, None, ""))
            i += 1
        result.problems.extend(self.problems)
        if not self.problems:   # a file that is not JSON is reported, not compared
            result.diffs.extend(self.diffs)


_BAD: Any = object()


def rated_forms(folder: Path | str) -> tuple[ReplayResult, list[str]]:
    """The case rated and every CDR's expected.jsonl line, as ``--update`` writes them."""
    texts: list[str] = []
    writer = LineWriter()

    def collect(*chunk: Any) -> None:
        texts.extend(writer.lines(*chunk))

    return rate_folder(Path(folder), collect), texts


def update_folder(folder: Path | str) -> ReplayResult:
    """Rewrite expected.jsonl from the current engine (on purpose: review the diff before committing)."""
    folder = Path(folder)
    result, texts = rated_forms(folder)
    if not result.problems:
        texts.append("")   # (the last line ends too)
        (folder / EXPECTED_FILE).write_text("\n".join(texts), encoding="utf-8")
    return result


def find_cases(paths: list[Path | str]) -> list[Path]:
    """Folders that are cases (have plans/), or whose direct subfolders are."""
    return [case for p in paths for case in cases_in(Path(p))]


def cases_in(path: Path) -> list[Path]:
    """The case ``path`` is (it has plans/), else the cases among its direct subfolders ([] for a folder that holds
    none); a path that is not a folder is kept, as a case replay_folder reports as a problem."""
    if (path / "plans").is_dir():
        return [path]
    if path.is_dir():
        return sorted(c for c in path.iterdir() if (c / "plans").is_dir())
    return [path]


def junit_xml(results: list[ReplayResult], suite: str = "rulebill.replay") -> str:
    failures = sum(1 for r in results if not r.ok)
    rows = [f'<?xml version="1.0" encoding="UTF-8"?>',
            f"<testsuites><testsuite name={quoteattr(suite)} tests=\"{len(results)}\" failures=\"{failures}\" errors=\"0\">"]
    for r in results:
        rows.append(f"<testcase classname={quoteattr(suite)} name={quoteattr(r.name)}>")
        if not r.ok:
            message = "plan set or case files invalid" if r.problems else f"{len(r.diffs)} of {r.count} CDRs differ"
            rows.append(f"<failure message={quoteattr(message)}>{escape(r.render())}</failure>")
        rows.append("</testcase>")
    rows.append("</testsuite></testsuites>")
    return "\n".join(rows) + "\n"


def totals(result: ReplayResult) -> str:
    return format_amount(result.charged_micros)
