"""What-if: the same CDRs rated under a candidate and the active plan set; revenue difference per plan and service.

Both sides rate through the one evaluator's batch loop (engine.rating.evaluator),
in chunks, with bundles: on each side every subscriber starts each bill cycle
(in its plan's time zone) with its plan's monthly bundles in full, and spends
them in CDR order, so a candidate that changes an allowance shows its effect.
It is a tariff comparison, not a bill: the counters the store keeps are neither
read nor touched.  The CDRs may be rows of the normalised layout (a CDR file,
the CDR store) or MediatedCdr objects (sent over gRPC).

A CDR file's chunk of one plan whose versions all have the same bundles is rated
by the evaluator's C loop alone, both sides in one walk of the columns (each
row under the active plan set, then the candidate), each row's wallet found in
its start minute's entry (:meth:`Wallets.book_of`); a candidate's prefix indexes
that hold the active set's prefixes share its tables, so both sides read one and
the walk finds a row's destination group once.  There the C loop also adds up,
per service, the rows it rates of a service whose line already has its currency
(no result is made for them); the rows it leaves, and every row of a service
seen for the first time, are kept and counted by their statuses in Python.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, islice
from operator import itemgetter
from sys import intern
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from engine.cancellation import checkpoint
from engine.cdr import COLUMNS, MediatedCdr, format_time, parse_time
from engine.columns import column_of
from engine.gcpause import collector_paused
from engine.money import format_amount
from engine.rating.bandclock import Stretches
from engine.rating.compiled import CompiledPlans
from engine.columns import ColumnRows
from engine.rating.evaluator import RATED, REJECTED, Evaluator, Row, WalletsByGroup, row_of
from engine.rating.limits import DEFAULT_LIMITS, CdrLimits
from engine.rating.usage import cycle_of
from engine.yamlio import Problem

PlanFor = Callable[[Sequence[Any]], str]
CHUNK = 20_000
_A, _TENANT, _ATTRS, _SERVICE, _START = (COLUMNS.index(c) for c in ("a_number", "tenant", "attributes", "service", "start_time"))
_STATUS_OF, _CHARGE_OF = itemgetter(0), itemgetter(1)   # of an evaluator Row
_UNSEEN: Any = object()
_NEVER = 1 << 62


@dataclass
class WhatIfLine:
    plan_id: str
    service: str
    currency: str = ""
    cdrs: int = 0
    active_micros: int = 0
    candidate_micros: int = 0
    active_unrated: int = 0
    candidate_unrated: int = 0

    @property
    def difference_micros(self) -> int:
        return self.candidate_micros - self.active_micros

    def as_dict(self) -> dict[str, object]:
        c = self.currency
        return {
            "plan": self.plan_id, "service": self.service, "currency": c, "cdrs": self.cdrs,
            "active": format_amount(self.active_micros, c), "candidate": format_amount(self.candidate_micros, c),
            "difference": format_amount(self.difference_micros, c),
            "active_unrated": self.active_unrated, "candidate_unrated": self.candidate_unrated,
        }


@dataclass
class WhatIfReport:
    lines: list[WhatIfLine] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)   # candidate validation errors: nothing was rated
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def difference_micros(self) -> int:
        """The sum of every line's difference (meaningful when the lines share one currency)."""
        return sum(line.difference_micros for line in self.lines)

    def differences(self) -> dict[str, int]:
        """Revenue difference per currency (lines that nothing rated have no currency and no difference)."""
        out: dict[str, int] = {}
        for line in self.lines:
            if line.currency:
                out[line.currency] = out.get(line.currency, 0) + line.difference_micros
        return out


def plan_attribute(attributes: str) -> str:
    """The ``plan`` attribute of a row's attribute text (``k=v;k=v``), or ""."""
    if "plan=" not in attributes:
        return ""
    for kv in attributes.split(";"):
        if kv.startswith("plan="):
            return kv[5:]
    return ""


def default_plan_for(assignments: Mapping[str, str] | None = None, default: str = "") -> PlanFor:
    """Plan of a row by its attribute ``plan``, else by a_number, else by tenant, else ``default``."""
    table = dict(assignments or {})

    def plan_for(row: Sequence[Any]) -> str:
        return plan_attribute(row[_ATTRS] or "") or table.get(row[_A]) or table.get(row[_TENANT]) or default

    return plan_for


class RowChunks(Protocol):
    """CDR rows that come in chunks already (a CDR file read by :class:`engine.csvrows.CdrFile`)."""

    def chunks(self, size: int) -> Iterator[Sequence[Sequence[Any]]]: ...


class ChunkPlans(Protocol):
    """A plan assignment that answers for a whole chunk at once (one plan for all, or one per row)."""

    def plans_of_rows(self, rows: Sequence[Sequence[Any]]) -> str | list[str]: ...


def _chunks(cdrs: Iterable[Any] | RowChunks) -> Iterator[Sequence[Sequence[Any]]]:
    if hasattr(cdrs, "chunks"):
        yield from cdrs.chunks(CHUNK)
        return
    rows = iter(cdrs)
    while True:
        chunk = list(islice(rows, CHUNK))
        if not chunk:
            return
        if MediatedCdr in set(map(type, chunk)):
            chunk = [row_of(c) if isinstance(c, MediatedCdr) else c for c in chunk]
        yield chunk


def what_if(cdrs: Iterable[Any] | RowChunks, candidate: CompiledPlans, active: CompiledPlans,
            plan_for: PlanFor | Mapping[str, str] | None = None, limits: CdrLimits = DEFAULT_LIMITS) -> WhatIfReport:
    """Rate every CDR (row or MediatedCdr) with both plan sets and sum the charges per plan and service."""
    assign = plan_for if callable(plan_for) else default_plan_for(plan_for)
    _share_indexes(candidate, active)
    a_ev, c_ev = Evaluator(active, limits), Evaluator(candidate, limits)
    lines: dict[tuple[str, str], WhatIfLine] = {}
    report = WhatIfReport()
    with collector_paused():   # reading and rating build many small acyclic objects (see engine.gcpause)
        _compare(_chunks(cdrs), assign, a_ev, c_ev, lines, report)
    report.lines = [lines[k] for k in sorted(lines)]
    return report


def _share_indexes(candidate: CompiledPlans, active: CompiledPlans) -> None:
    """A candidate version's prefix index takes the tables of an active version's index that holds the same prefixes
    and groups (a candidate that changes prices only: all of them), so both sides' C loops read one prefix table."""
    actives = {id(v.index): v.index for p in active.plans.values() for v in p.versions}
    for plan in candidate.plans.values():
        for v in plan.versions:
            for index in actives.values():
                if v.index.share(index):
                    break


class _GroupOf(dict[Any, int]):
    """One plan's start minutes -> wallet group, found on first use (looked up for every row at C speed)."""

    def __init__(self, wallets: "Wallets", plan_id: str) -> None:
        super().__init__()
        self.wallets, self.plan_id = wallets, plan_id

    def __missing__(self, start: Any) -> int:
        g = self[start] = self.wallets.group_of(self.plan_id, start)
        return g


class _Book(dict[Any, dict[str, int]]):
    """A (plan, bill cycle) group's wallets by a_number: a subscriber's is opened, with the group's first bundles in
    full, when a row first asks for it (by the evaluator's C loop too), so no chunk is scanned for new subscribers."""

    def __init__(self, bundles: tuple[tuple[str, int], ...]) -> None:
        super().__init__()
        self.bundles = bundles

    def __missing__(self, a_number: Any) -> dict[str, int]:
        wallet = self[a_number] = dict(self.bundles)
        return wallet


class Wallets:
    """One side's bundle counters: each subscriber's plan's monthly bundles in full at the start of each bill cycle
    (anchored on the 1st, in the plan's time zone, as rating with counters counts them).

    A row's wallet is that of (a_number, plan, cycle), made at the first row of it with the bundles of the plan
    version in force then.  Rows of different cycles or plans never share a wallet, so the wallets are kept per
    (plan, cycle) group by a_number, and the evaluator's C loop finds a row's wallet itself from its group and
    a_number (a group of a plan whose versions differ in bundles: a wallet per row, made here at its first row)."""

    def __init__(self, compiled: CompiledPlans) -> None:
        self.compiled = compiled
        # (plan, cycle) -> wallets by a_number; per plan: start_time cell -> group (index in _groups; -1: no bundles)
        self._groups: list[tuple[str, str, dict[Any, dict[str, int]]]] = []
        self._group_ids: dict[tuple[str, str], int] = {}
        self._bundles: dict[tuple[str, Any], tuple[tuple[str, int], ...]] = {}   # (plan, start) -> bundles then
        self._mixed: set[int] = set()   # groups of a plan whose versions differ in bundles: wallets made row by row
        self._starts: dict[str, _GroupOf] = {}
        self._cycles: dict[tuple[str, str], Any] = {}   # (plan, start minute) -> its (cycle, bundles) or None
        self._uniform: dict[str, bool] = {}
        # per plan: the stretches of one version and local day found so far (see _cycle)
        self._stretches: defaultdict[str, Stretches] = defaultdict(Stretches)

    def uniform(self, plan_id: str) -> bool:
        """Is the plan in the set, with the same monthly bundles in every version?  Then a cycle's wallets are never
        made row by row (no cycle holds versions with different bundles), and :meth:`book_of` answers by minute."""
        found = self._uniform.get(plan_id)
        if found is None:
            plan = self.compiled.plan(plan_id)
            found = self._uniform[plan_id] = plan is not None and len({self._monthly(v) for v in plan.versions}) <= 1
        return found

    def book_of(self, plan_id: str, minute: str, epoch: int | None = None) -> dict[Any, dict[str, int]] | None | bool:
        """The wallets by a_number of the rows of a plan starting in this minute ("YYYY-MM-DDTHH:MM"; ``epoch``: its
        UTC epoch when the caller has it): its group's (None: no bundles then); False when the plan is not
        :meth:`uniform` (the caller finds wallets row by row).  The evaluator keeps it in the minute's entry
        (Evaluator.minute_book), where the C loop takes it."""
        if not self.uniform(plan_id):
            return False
        if epoch is None:
            g = self.group_of(plan_id, minute)
        else:
            # the minute's (cycle, bundles) by stretch, as _cycle finds it (a uniform plan is in the set); a uniform
            # plan's wallets are never made row by row, so the bundles by start (for _by_row) are not kept
            found = self._stretches[plan_id].find(epoch, lambda: self._cycle_at(self.compiled.plan(plan_id), epoch))
            g = -1 if found is None else self._group(plan_id, *found)
        return self._groups[g][2] if g >= 0 else None

    def _monthly(self, v: Any) -> tuple[tuple[str, int], ...]:
        """A plan version's monthly bundles with their allowances."""
        return tuple((bid, b.allowance) for bid in v.bundles
                     if (b := self.compiled.bundles.get(bid)) is not None and b.recurrence == "monthly")

    def rate(self, ev: Evaluator, chunk: Sequence[Sequence[Any]], plans: str | Sequence[str], starts: Sequence[str]) -> list[Row]:
        """Rate the chunk through ``ev`` with every row's wallet, consumed in row order (``starts``: the rows'
        start minutes, :func:`minutes_of`)."""
        if len(self._bundles) > 200_000:   # bounded memory over a long file (found again on demand)
            self._starts.clear()
            self._bundles.clear()
        if isinstance(plans, str):
            gids = list(map(self._groups_of(plans).__getitem__, starts))
        else:
            gids = [self._groups_of(p)[s] for p, s in zip(plans, starts)]
        distinct = set(gids)
        if distinct & self._mixed:
            return ev.rate_rows(chunk, plans, self._by_row(chunk, plans, starts, gids))
        if len(distinct) == 1:
            g = gids[0]
            # by a_number: the evaluator's C loop looks them up itself (the book opens a wallet on first use)
            return ev.rate_rows(chunk, plans, self._groups[g][2] if g >= 0 else None)
        # Rows of different groups never share a wallet: every row's wallet is found by its group and a_number
        # (in the C loop), so a chunk that straddles a bill cycle (the last hours of a month in the plan's zone)
        # is rated as one
        books: list[dict[str, dict[str, int]] | None] = [wallets for _plan, _cycle, wallets in self._groups]
        return ev.rate_rows(chunk, plans, WalletsByGroup(gids, books))

    def _by_row(self, chunk: Sequence[Sequence[Any]], plans: str | Sequence[str], starts: Sequence[str],
                gids: list[int]) -> list[dict[str, int] | None]:
        """Every row's wallet (None: no bundles), each made at its first row with the bundles in force then."""
        out: list[dict[str, int] | None] = []
        groups, bundles = self._groups, self._bundles
        for g, row, start in zip(gids, chunk, starts):
            if g < 0:
                out.append(None)
                continue
            plan_id, _cycle, wallets = groups[g]
            wallet = wallets.get(row[_A])
            if wallet is None:
                wallet = wallets[row[_A]] = dict(bundles[(plan_id, start)])
            out.append(wallet)
        return out

    def _groups_of(self, plan_id: str) -> _GroupOf:
        of = self._starts.get(plan_id)
        if of is None:
            of = self._starts[plan_id] = _GroupOf(self, plan_id)
        return of

    def group_of(self, plan_id: str, start: Any) -> int:
        """The group (plan, cycle) of a row of this plan with this start minute (or start_time cell); -1: no wallet.
        The cycle is that of the start minute (the cell's first 16 characters) in the plan's zone."""
        minute = (start if isinstance(start, str) else format_time(start) if start is not None else "")[:16]
        # by minute: a real CDR file has about as many distinct start_time cells as rows, but few minutes
        found = self._cycles.get((plan_id, minute), _UNSEEN)
        if found is _UNSEEN:
            if len(self._cycles) > 200_000:   # bounded memory over a long file (found again on demand)
                self._cycles.clear()
            found = self._cycles[(plan_id, minute)] = self._cycle(plan_id, minute)
        if found is None:
            return -1
        cycle, bundles = found
        g = self._group(plan_id, cycle, bundles)
        self._bundles[(plan_id, start)] = bundles
        return g

    def _group(self, plan_id: str, cycle: str, bundles: tuple[tuple[str, int], ...]) -> int:
        """The group of (plan, cycle), made with these bundles at its first row."""
        g = self._group_ids.get((plan_id, cycle), -1)
        if g < 0:
            g = self._group_ids[(plan_id, cycle)] = len(self._groups)
            self._groups.append((plan_id, cycle, _Book(bundles)))
            if not self.uniform(plan_id):
                # versions with different bundles: a wallet is made at the subscriber's first row of the cycle with
                # the bundles then, whether or not that row takes from it (a book opens a wallet only when a row
                # asks, which is the same only while every row of the cycle would make it alike), so row by row
                self._mixed.add(g)
        return g

    def _cycle(self, plan_id: str, minute: str) -> tuple[str, tuple[tuple[str, int], ...]] | None:
        plan = self.compiled.plan(plan_id)
        if plan is None:
            return None
        try:
            epoch = int(parse_time(minute + ":00Z").timestamp())
        except ValueError:
            return None   # the evaluator rejects the row and says why
        # by stretch: the answer holds from the instant that found it to the next local midnight, UTC-offset change
        # or version start (a file of a month has a few dozen stretches, and about as many minutes as rows)
        return self._stretches[plan_id].find(epoch, lambda: self._cycle_at(plan, epoch))

    def _cycle_at(self, plan: Any, epoch: int) -> tuple[int, tuple[str, tuple[tuple[str, int], ...]] | None]:
        """(end of the stretch, :meth:`_cycle`'s answer) from ``epoch``."""
        v = plan.version_at(epoch)
        later = plan.next_start(epoch)
        end = later if later is not None else _NEVER
        if v is None:
            found = None
        else:
            day, until = v.clock.local_day_until(epoch)
            end = min(end, until)
            bundles = self._monthly(v)
            found = (cycle_of(day), bundles) if bundles else None
        return end, found


def _compare(chunks: Iterator[Sequence[Sequence[Any]]], assign: PlanFor, a_ev: Evaluator, c_ev: Evaluator,
             lines: dict[tuple[str, str], WhatIfLine], report: WhatIfReport) -> None:
    a_wallets, c_wallets = Wallets(a_ev.compiled), Wallets(c_ev.compiled)
    # each side's wallets by start minute, kept in the evaluator's entry of the minute (for _sum_by_minute)
    a_ev.minute_book, c_ev.minute_book = a_wallets.book_of, c_wallets.book_of
    plans_of: Callable[[Sequence[Sequence[Any]]], str | list[str]] = getattr(assign, "plans_of_rows", None) or (
        lambda chunk: list(map(assign, chunk)))
    for chunk in chunks:
        checkpoint()   # the caller may have gone away: a comparison nobody reads is not finished
        plans = plans_of(chunk)
        # one plan for the whole chunk (the common case): the batch loop then looks the plan up once
        plan_arg: str | list[str] = plans if isinstance(plans, str) else (
            plans[0] if plans.count(plans[0]) == len(plans) else plans)
        if (isinstance(plan_arg, str) and isinstance(chunk, ColumnRows) and len(chunk.columns) == len(COLUMNS)
                and a_wallets.uniform(plan_arg) and c_wallets.uniform(plan_arg)):
            # the services whose line has its currency: their rows the C loop adds up itself (the others' rows are
            # kept, for the first of them either side priced gives the line its currency)
            settled = {service for (plan, service), line in lines.items() if plan == plan_arg and line.currency}
            a_sums, c_sums = _sum_by_minute(chunk, plan_arg, settled, (a_ev, a_wallets), (c_ev, c_wallets))
            _add_up_sums(chunk, plan_arg, a_sums, c_sums, lines, report)
        else:
            active, candidate = _rate_apart(chunk, plan_arg, (a_ev, a_wallets), (c_ev, c_wallets))
            _add_up(chunk, plan_arg, active, candidate, lines, report)


Side = tuple[Evaluator, Wallets]
# a chunk whose rows the C loop leaves this often to the batch loop is finished by the batch loop
_LEFT_AT_MOST = 8


def _rate_apart(chunk: Sequence[Sequence[Any]], plans: str | list[str], *sides: Side) -> list[list[Row]]:
    """The rows rated by each side in its own walk, in row order (each side's wallets consumed in that order)."""
    # each row's start minute, once for both sides: wallets are found by minute (a real file has about as many
    # distinct start_time cells as rows, and one look-up per distinct cell and side cost more than the rating)
    starts = minutes_of(column_of(chunk, _START))
    return [wallets.rate(ev, chunk, plans, starts) for ev, wallets in sides]


# One side's results of a chunk: {service: (rows, charge)} of the rows the C loop added up (every one rated), and
# the rows it did not, by index
Sums = tuple[dict[str, tuple[int, int]], dict[int, Row]]


def _sum_by_minute(chunk: ColumnRows, plan_id: str, settled: set[str], *sides: Side) -> list[Sums]:
    """Both sides in one walk of the columns by the C loop (Evaluator.rate_by_minute_with): each row rated under the
    active plan set, then the candidate, its cells read once and its destination group found once when the two prefix
    indexes share their tables (:func:`_share_indexes`); each side's wallet found in its start minute's entry
    (Wallets.book_of), so no row is looked at in Python.  The rated rows of the ``settled`` services are only added up
    per service by the C loop (no result is made for them), every other row's result is kept with its index.  A row
    the C loop leaves (for one side or both) is rated by the side's batch loop, in order, and the walk goes on from the
    next (a chunk with many such rows is finished by the batch loops).  Each side's wallets are consumed in row order,
    so the sums are those of a walk per side (the tests hold the two equal)."""
    (a_ev, _a_wallets), (c_ev, _c_wallets) = sides
    n = len(chunk)
    outs: tuple[list[Row], list[Row]] = ([], [])
    wheres: tuple[list[int], list[int]] = ([], [])
    totals: tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]] = ({}, {})
    sums = ((settled, totals[0], wheres[0]), (settled, totals[1], wheres[1]))
    i = left = 0
    while True:
        i, first_took = a_ev.rate_by_minute_with(c_ev, chunk, plan_id, i, outs, sums)
        if i >= n:
            break
        left += 1
        end = n if left > _LEFT_AT_MOST else i + 1
        for k, (ev, wallets) in enumerate(sides):
            begin = i + 1 if k == 0 and first_took else i   # (the active side rated row i in the walk)
            if begin < end:
                rest = chunk[begin:end]
                outs[k].extend(wallets.rate(ev, rest, plan_id, minutes_of(column_of(rest, _START))))
                wheres[k].extend(range(begin, end))
        i = end
    return [(totals[k], dict(zip(wheres[k], outs[k]))) for k in (0, 1)]


def _add_up_sums(chunk: ColumnRows, plan_id: str, active: Sums, candidate: Sums, lines: dict[tuple[str, str], WhatIfLine],
                 report: WhatIfReport) -> None:
    """:func:`_add_up` for a chunk of one plan rated by :func:`_sum_by_minute`: a row neither side kept was rated by
    both; the rows kept (by either side) are counted by their statuses.  The same lines as :func:`_add_up` gives."""
    (a_totals, a_rows), (c_totals, c_rows) = active, candidate
    rows = {k: n for k, (n, _charge) in a_totals.items()}   # each service's rows (every row is summed or kept by a side)
    a_charges = {k: charge for k, (_n, charge) in a_totals.items()}
    c_charges = {k: charge for k, (_n, charge) in c_totals.items()}
    kept: dict[str, int] = {}   # each service's rows kept by either side
    counts: Counter[tuple[str, str, str]] = Counter()
    cells = column_of(chunk, _SERVICE)
    explicit = sorted(a_rows.keys() | c_rows.keys())
    keys: dict[int, str] = {}
    for i in explicit:
        cell = cells[i]
        k = keys[i] = intern(cell if type(cell) is str else str(cell))
        a, c = a_rows.get(i), c_rows.get(i)
        counts[(k, a[0] if a is not None else RATED, c[0] if c is not None else RATED)] += 1
        kept[k] = kept.get(k, 0) + 1
        if a is not None:
            rows[k] = rows.get(k, 0) + 1
            a_charges[k] = a_charges.get(k, 0) + a[1]
        if c is not None:
            c_charges[k] = c_charges.get(k, 0) + c[1]
    for k, n in rows.items():
        if n > kept.get(k, 0):
            counts[(k, RATED, RATED)] += n - kept.get(k, 0)
    _count(counts, lambda k: (plan_id, k), lines, report)
    for k in a_charges.keys() | c_charges.keys():
        line = lines.get((plan_id, k))
        if line is not None:   # (None: only rejected CDRs, which carry 0)
            line.active_micros += a_charges.get(k, 0)
            line.candidate_micros += c_charges.get(k, 0)
    # a line's currency: that of the first CDR of it either side priced in a plan version (a service without one is
    # not settled: both sides kept all its rows)
    lacking = {k for k in keys.values() if (plan_id, k) in lines and not lines[(plan_id, k)].currency}
    for i in explicit:
        if not lacking:
            break
        k = keys[i]
        if k not in lacking:
            continue
        a, c = a_rows[i], c_rows[i]   # (an unsettled service's row: kept by both sides)
        if a[0] != REJECTED:
            currency = (a[4].currency if a[4] is not None else "") or (c[4].currency if c[4] is not None else "")
            if currency:
                lines[(plan_id, k)].currency = currency
                lacking.discard(k)


def _count(counts: Mapping[tuple[Any, str, str], int], line_key: Callable[[Any], tuple[str, str]],
           lines: dict[tuple[str, str], WhatIfLine], report: WhatIfReport) -> None:
    """Add the rows counted by (key, active status, candidate status) to their lines (made on first use); a row the
    active side rejected is in no line."""
    for (k, a_is, c_is), n in counts.items():
        if a_is == REJECTED:
            report.rejected += n
            continue
        key = line_key(k)
        line = lines.get(key)
        if line is None:
            line = lines[key] = WhatIfLine(*key)
        line.cdrs += n
        if a_is != RATED:
            line.active_unrated += n
        if c_is != RATED:
            line.candidate_unrated += n


def minutes_of(cells: Sequence[Any]) -> list[str]:
    """The start minute ("YYYY-MM-DDTHH:MM") of each start_time cell: text (a CDR file) or a datetime (the store);
    a cell that is neither gives "" (the evaluator rejects its row and says why)."""
    try:
        return [c[:16] for c in cells]
    except TypeError:   # not all text
        return [(c if isinstance(c, str) else format_time(c) if isinstance(c, datetime) else "")[:16] for c in cells]


def _add_up(chunk: Sequence[Sequence[Any]], plans: str | list[str], active: list[Row], candidate: list[Row],
            lines: dict[tuple[str, str], WhatIfLine], report: WhatIfReport) -> None:
    """Add a chunk's results to the lines by (plan, service): counts by status over the whole chunk at once, charges
    summed per line (a row not rated carries a charge of 0, so it adds nothing); a rejected CDR is in no line.
    ``plans``: the one plan of every row, or each row's."""
    cells = column_of(chunk, _SERVICE)
    try:
        # interned: every row of a service then holds one string, which the counts and comparisons below find by
        # identity (the cells of a CDR file are as many strings as rows)
        services = list(map(intern, cells))
    except TypeError:   # a typed cell (not exactly a str)
        services = list(map(intern, map(str, cells)))
    # by service alone when the chunk has one plan (cheaper to hash and compare), else by (plan, service)
    keys: list[Any] = services if isinstance(plans, str) else list(zip(plans, services))
    line_key: Callable[[Any], tuple[str, str]] = (lambda k: (plans, k)) if isinstance(plans, str) else (lambda k: k)
    distinct = set(keys)
    sizes = {k: keys.count(k) for k in distinct}   # (a few keys: a count each is cheaper than a Counter of the chunk)
    a_status, c_status = list(map(_STATUS_OF, active)), list(map(_STATUS_OF, candidate))
    counts: Mapping[tuple[Any, str, str], int]
    if a_status.count(RATED) == len(a_status) and c_status.count(RATED) == len(c_status):
        counts = {(k, RATED, RATED): n for k, n in sizes.items()}   # the common chunk: every row rated both sides
    else:
        counts = Counter(zip(keys, a_status, c_status))
    _count(counts, line_key, lines, report)
    a_charges, c_charges = list(map(_CHARGE_OF, active)), list(map(_CHARGE_OF, candidate))
    # every key's rows picked out but the most frequent key's, whose charges are what the others leave of the chunk's
    a_left, c_left = sum(a_charges), sum(c_charges)
    most = max(sizes, key=sizes.__getitem__, default=None)
    for k in distinct:
        if k == most:
            continue
        mine = list(map(k.__eq__, keys))
        a_sum, c_sum = sum(compress(a_charges, mine)), sum(compress(c_charges, mine))
        a_left, c_left = a_left - a_sum, c_left - c_sum
        line = lines.get(line_key(k))
        if line is not None:   # (None: only rejected CDRs, which carry 0)
            line.active_micros += a_sum
            line.candidate_micros += c_sum
    line = lines.get(line_key(most)) if most is not None else None
    if line is not None:
        line.active_micros += a_left
        line.candidate_micros += c_left
    # a line's currency: that of the first CDR of it either side priced in a plan version
    lacking = {k for k in distinct if line_key(k) in lines and not lines[line_key(k)].currency}
    if lacking:
        for k, a, c in zip(keys, active, candidate):
            if k in lacking and a[0] != REJECTED:
                currency = (a[4].currency if a[4] is not None else "") or (c[4].currency if c[4] is not None else "")
                if currency:
                    lines[line_key(k)].currency = currency
                    lacking.discard(k)
                    if not lacking:
                        break


def what_if_paths(cdrs: Iterable[Any] | RowChunks, candidate_paths: Iterable[str], active: CompiledPlans,
                  plan_for: PlanFor | Mapping[str, str] | None = None) -> WhatIfReport:
    """Like :func:`what_if` from candidate plan files: an invalid candidate returns its validation errors, unrated."""
    from engine.plans import compile_plan_set, load_plan_set

    plan_set, problems = load_plan_set(candidate_paths)
    if plan_set is None:
        return WhatIfReport(problems=problems)
    return what_if(cdrs, compile_plan_set(plan_set), active, plan_for)
