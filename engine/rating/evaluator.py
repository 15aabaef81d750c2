"""The one pricing implementation: a compiled plan set evaluated against CDRs (pure, no I/O).

Every product path rates here: RatingService, mediation with rating, re-rating,
``rulebill replay`` and what-if.  Two entry points share one pricing code:

* :meth:`Evaluator.rate` rates one :class:`MediatedCdr` into a :class:`RatedCdr`
  (spans, bundle use, discounts, and an explanation written only when read);
* :meth:`Evaluator.rate_rows` rates many rows of the normalised CDR layout (as
  ``csv.reader``, the mediation store or a gRPC chunk give them) into compact
  :data:`Row` results, with bundle counters consumed in memory in row order.
  Per start minute it keeps the plan version, the band and how long the band
  lasts; per traffic kind the rate, the bundles and discounts that can apply;
  per rate the one-span charge by usage rounded up to the end of its increment
  (filled by the same pricing code).
  A call crossing a band or a bundle covering part of a call is priced in the
  loop by the per-CDR pricing on the values read (in the C loop, for stepped
  rates, by the same arithmetic in C, which tests hold to it); a row with a
  condition to evaluate or a bad value takes the per-CDR way (parsed and
  validated again).

Order of work for one CDR:

1. impossible or out-of-bounds values -> ``rejected`` (field and reason);
2. plan, version in force at the start time, zone, destination group (longest
   prefix) -> ``unrated`` with a reason code when any is missing;
3. voice calls are cut where the band changes (midnight, DST and holidays
   included), found by bisection in the band clock, never by walking time;
   tiered rates, data, SMS, MMS and supplementary events are priced at the
   band in force when they start;
4. increments lie on one grid from the start of the call (an increment that
   straddles a band change is charged in full at the rate of the span where it
   starts, see :mod:`engine.rating.models.stepped`);
5. the subscriber's applicable bundles (by ``priority``) cover billed units
   before money;
6. money, exactly, in integers: sum of span amounts + connect fee, then the
   minimum charge, then the maximum cost, then one rounding with the first
   span's rate's mode and decimals (``per_span``/``per_increment`` rates round
   earlier, as they say).  A call wholly covered by bundles costs nothing (no
   connect fee, no minimum); a call with zero billed units still pays the
   connect fee and minimum charge, if the rate has them;
7. CDR-level discounts of the plan version, in plan order, each on what the
   previous ones left of the rounded charge (never below zero).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from fractions import Fraction
from math import lcm
from itertools import islice
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from engine.cdr import COLUMNS, CdrValueError, MediatedCdr, Service, encode_attributes, format_time, from_row, validate
from engine.columns import ColumnRows
from engine.gcpause import collector_paused
from engine.money import (MAX_AMOUNT_MICROS, MICROS, RoundingMode, beyond_bound, divide_rounded, format_amount, format_micros,
                          fraction_text, round_micros)
from engine.rating.bandclock import Stretches
from engine.rating.compiled import CompiledBundle, CompiledPlan, CompiledPlans, CompiledRate, CompiledVersion, prefix_index
from engine.rating.discounts import ChargeLine, DiscountModel
from engine.rating.limits import DEFAULT_LIMITS, LATEST_EPOCH, EARLIEST_EPOCH, CdrLimits
from engine.rating.models import Part
from engine.rating.models.base import grid_end
from engine.rating.models.stepped import SteppedModel
from engine.rating.models.tiered import TieredModel
from engine.rating.prefix import PrefixIndex
from engine.rating.result import BundleState, BundleUse, DiscountLine, RatedCdr, RatedSpan, RatingStatus, UnratedReason

RATED, UNRATED, REJECTED = RatingStatus.RATED.value, RatingStatus.UNRATED.value, RatingStatus.REJECTED.value
SERVICES = frozenset(s.value for s in Service)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ZERO = frozenset({"", "0", 0})
_ONE_EVENT = frozenset({"", "0", "1", 0, 1})
_MEMO_SIZE = 200_000
_MISS: Any = object()
_NEVER = 1 << 62
_SECONDS = frozenset(f":{s:02d}Z" for s in range(60))
# the columns the batch loops read, in this order
_NEEDED = ("service", "direction", "start_time", "b_number", "duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count",
           "visited_network")
_COLUMNS_NEEDED, _COLUMNS_A = tuple(COLUMNS.index(n) for n in _NEEDED), COLUMNS.index("a_number")
_VOICE_OK = frozenset((u, d, e) for u in _ZERO for d in _ZERO for e in _ONE_EVENT)   # a voice row's other usage cells

# A rated row: (status, charge micros, rate id(s) "+"-joined or the reason, bundle uses ((bundle, units), ...) or None,
#               plan version or None, destination group, zone, units, band, how it was priced): the last two let
# Evaluator.rated_of write the full RatedCdr without pricing again -- the band and the one-span memo entry (gross,
# billed units, span micros) of a plain row, ``(gross, ((start, end, band, rate id, billed, bundle units, micros), ...))``
# of a call the C loop priced by parts (band crossings, bundles paying part of it), the Priced of a row the per-CDR way
# rated, or None (rate again)
Row = tuple[str, int, str, "tuple[tuple[str, int], ...] | None", "CompiledVersion | None", str, str, int, str, Any]
WalletOf = Callable[[int, Sequence[Any]], "dict[str, int] | None"]


class WalletsByGroup(NamedTuple):
    """Wallets of rows that fall in different groups (what-if: (plan, bill cycle)): each row's group (below 0:
    no wallet) and each group's wallets by a_number (None: none)."""

    groups: list[int]
    books: list["dict[str, dict[str, int]] | None"]


Wallets = WalletOf | Mapping[str, "dict[str, int]"] | Sequence["dict[str, int] | None"] | WalletsByGroup
_BY_CALL, _BY_ROW, _BY_NUMBER, _BY_GROUP, _BY_MINUTE = 0, 1, 2, 3, 4
MinuteBook = Callable[[str, str, int], "Mapping[str, dict[str, int]] | None | bool"]   # (plan, minute, its epoch)


def _wallet_access(wallets: Wallets | None, i_a: int) -> tuple[WalletOf | None, int]:
    """(a function of (i, row) giving the row's wallet, how the C loop reads them: by call, row, a_number or group)."""
    if wallets is None:
        return None, _BY_CALL
    if isinstance(wallets, WalletsByGroup):
        groups, books = wallets

        def by_group(i: int, row: Sequence[Any]) -> dict[str, int] | None:
            g = groups[i]
            book = books[g] if 0 <= g < len(books) and i_a >= 0 else None   # as the C loop: no such group, no wallet
            return _wallet_in(book, row[i_a]) if book is not None else None

        return by_group, _BY_GROUP
    if isinstance(wallets, Mapping):
        by_number = wallets
        return (lambda _i, row: _wallet_in(by_number, row[i_a]) if i_a >= 0 else None), _BY_NUMBER
    if callable(wallets):
        return wallets, _BY_CALL
    by_row = wallets
    return (lambda i, _row: by_row[i]), _BY_ROW


def _wallet_in(book: Mapping[str, "dict[str, int]"], a_number: str) -> "dict[str, int] | None":
    """The wallet of ``a_number`` in wallets by a_number: a book with ``__missing__`` opens it on first use (what-if:
    the subscriber's bundles in full), another has none for a number it does not hold."""
    if hasattr(type(book), "__missing__"):
        try:
            return book[a_number]
        except KeyError:
            return None
    return book.get(a_number)


class _Unrated(Exception):
    def __init__(self, code: UnratedReason, message: str, plan_id: str = "") -> None:
        self.code, self.message, self.plan_id = code, message, plan_id


class Priced:
    """What the pricing code found for one CDR (integers; the explanation is written from it on demand)."""

    __slots__ = ("v", "service", "zone", "group", "prefix", "units", "spans", "uses", "lines", "gross", "charge",
                 "usage_num", "total_num", "total_den", "covered_all", "minimum", "maximum", "passed", "via", "cuts", "waived")

    def __init__(self, v: CompiledVersion, service: str, zone: str, group: str, prefix: str, units: int) -> None:
        self.v, self.service, self.zone, self.group, self.prefix, self.units = v, service, zone, group, prefix, units
        # (start, end, band, rate, billed units, bundle units, span micros)
        self.spans: list[tuple[int, int, str, CompiledRate, int, int, int]] = []
        self.uses: list[tuple[str, int]] = []
        self.lines: list[DiscountLine] = []
        self.gross = self.charge = self.usage_num = self.total_num = 0
        self.total_den = 1
        self.covered_all = self.minimum = self.maximum = False
        # longer-prefix groups passed over because the plan does not price this traffic there: ((group, prefix), ...)
        self.passed: tuple[tuple[str, str], ...] = ()
        # plans passed through to their parent because they had no rate: ((plan id, why), ...)
        self.via: tuple[tuple[str, str], ...] = ()
        # version_change: split -- (unit offset, version) where a later version prices the rest of the call
        self.cuts: tuple[tuple[int, int], ...] = ()
        self.waived = False   # the connect fee of a zero-unit call, waived

    @property
    def flags(self) -> tuple[str, ...]:
        """Marks on the rated CDR: ``max-cost-disconnect`` when the call should have been cut at its maximum cost."""
        lead = self.spans[0][3] if self.spans else None
        return ("max-cost-disconnect",) if self.maximum and lead is not None and lead.flags_calls else ()

    @property
    def rate_ids(self) -> str:
        return "+".join(s[3].id for s in self.spans)


class Evaluator:
    """``Evaluator(compiled).rate(cdr, plan_id)`` / ``.rate_rows(rows, plans)``: see the module doc."""

    def __init__(self, compiled: CompiledPlans, limits: CdrLimits = DEFAULT_LIMITS) -> None:
        self.compiled = compiled
        self.limits = limits
        # a band lookup needs to see no further than the longest call
        self._horizon = limits.max_call_seconds + 60
        self._minutes: dict[str, dict[str, tuple[Any, ...] | None]] = {}
        # per (version, band): routes of home originating traffic by service and group, and of other traffic by key
        self._routes: dict[tuple[int, str], tuple[dict[str, _Routes], _Routes]] = {}
        self._days: dict[str, int] = {}
        # per plan: the stretches of one version and band run found so far (see _stretch)
        self._stretches: defaultdict[str, Stretches] = defaultdict(Stretches)
        self._bundle_index: list[tuple[str, CompiledBundle]] = sorted(compiled.bundles.items())
        self._all_groups: PrefixIndex | None = None
        # the C loop (engine.rating._rowkernel) when it was built; the Python loop prices the same (tests hold them equal)
        self.use_kernel = True
        # whether a charge beyond MAX_AMOUNT_MICROS can happen at all under these rates and limits (rarely: the rows
        # are then checked as they are rated)
        self.may_exceed = not _charges_within_bound(compiled, limits)
        # what-if's wallets by start minute: (plan, "YYYY-MM-DDTHH:MM") -> the wallets by a_number of the rows of that
        # plan starting then (None: no wallet; False: the C loop leaves such rows to the caller), kept in the minute's
        # entry so that the C loop finds a row's wallet with no look-up of its own (rate_by_minute, whatif.Wallets)
        self.minute_book: MinuteBook | None = None

    # == one CDR ================================================================================
    def rate(self, cdr: MediatedCdr, plan_id: str, bundles: Mapping[str, int] | None = None) -> RatedCdr:
        """Rate one CDR; ``bundles`` (remaining units per bundle) is not changed, the result's ``bundle_state`` is."""
        wallet = dict(BundleState(bundles)) if bundles is not None else None
        rated = self.rate_cdr(cdr, plan_id, wallet)
        return rated if wallet is None else replace(rated, bundle_state=BundleState(wallet))

    def rate_cdr(self, cdr: MediatedCdr, plan_id: str, wallet: dict[str, int] | None = None) -> RatedCdr:
        """Rate one CDR, consuming ``wallet`` (remaining units per bundle) in place."""
        try:
            validate(cdr)
            service = Service(cdr.service).value
            problems = self.limits.problems(cdr)
            if problems:
                raise CdrValueError(*problems[0])
        except (CdrValueError, ValueError) as exc:
            return RatedCdr(cdr.cdr_id, RatingStatus.REJECTED, reason=f"rejected: {exc}")
        direction = cdr.direction.value if hasattr(cdr.direction, "value") else str(cdr.direction)
        epoch = int(cdr.start_time.timestamp())
        try:
            priced = self.price(plan_id, service, direction, cdr.visited_network, cdr.b_number, epoch, _units(cdr, service),
                                wallet, lambda v, zone, group, units: _facts_of_cdr(cdr, v, service, direction, zone, group, units))
        except _Unrated as u:
            return _unrated(cdr.cdr_id, u)
        if beyond_bound(priced.charge):
            _give_back(wallet, priced.uses)
            return RatedCdr(cdr.cdr_id, RatingStatus.REJECTED, reason=_beyond_reason(priced.charge, priced.v.currency))
        return self._rated(cdr.cdr_id, cdr.b_number, priced)

    def price(self, plan_id: str, service: str, direction: str, visited: str, b_number: str, epoch: int, units: int,
              wallet: dict[str, int] | None, facts: Callable[..., dict[str, Any]]) -> Priced:
        """Plan, version, zone and group for a valid CDR, then :meth:`_price`; raises _Unrated.  What a plan has no
        rate for, its parent plan (``extends``) prices, to any depth (the validator refuses cycles)."""
        plan = self.compiled.plan(plan_id)
        if plan is None:
            if not plan_id:
                raise _Unrated(UnratedReason.NO_PLAN, "no tariff plan is assigned to this subscriber or tenant")
            raise _Unrated(UnratedReason.NO_PLAN, f"tariff plan {plan_id!r} is not in the plan set", plan_id)
        via: list[tuple[str, str]] = []
        while True:
            try:
                priced = self._price_in(plan, service, direction, visited, b_number, epoch, units, wallet, facts)
            except _Unrated as u:
                parent = self.compiled.plan(plan.parent) if plan.parent else None
                if u.code is not UnratedReason.NO_RATE or parent is None or len(via) >= len(self.compiled.plans):
                    if via:   # the subscriber's plan had no rate: say what each plan of the chain lacked, it first
                        u.message = "; then its parent: ".join([m for _p, m in via] + [u.message])
                        u.code, u.plan_id = UnratedReason.NO_RATE, plan_id
                    raise
                via.append((plan.id, u.message))
                plan = parent
                continue
            priced.via = tuple(via)
            return priced

    def _price_in(self, plan: CompiledPlan, service: str, direction: str, visited: str, b_number: str, epoch: int, units: int,
                  wallet: dict[str, int] | None, facts: Callable[..., dict[str, Any]]) -> Priced:
        v = plan.version_at(epoch)
        if v is None:
            raise _Unrated(UnratedReason.NO_VERSION, f"{plan.id} has no version in force at {_iso(epoch)}", plan.id)
        zone = self.compiled.zone_for(visited)
        if not zone:
            raise _Unrated(UnratedReason.NO_ZONE, f"visited network {visited!r} is in no zone", plan.id)
        group, prefix, passed = destination_of(v, service, direction, zone, b_number)
        # version_change: split -- the later versions a call runs into, from where they start
        cuts: list[tuple[int, CompiledVersion]] = []
        if plan.split and service == "voice":
            at = plan.next_start(epoch)
            while at is not None and at < epoch + units:
                cuts.append((at - epoch, plan.versions[plan.starts.index(at)]))
                at = plan.next_start(at)
        priced = self._price(v, service, direction, zone, group, prefix, b_number, epoch, units, wallet, facts, cuts)
        priced.passed = passed
        return priced

    def _spans(self, v: CompiledVersion, service: str, direction: str, zone: str, group: str, b_number: str, epoch: int,
               start: int, stop: int) -> list[tuple[int, int, str, CompiledRate]]:
        """Units ``start..stop`` of a call that started at ``epoch``, priced by version ``v``, cut where the band changes."""
        if v.own_keys and (service, direction, zone, group) in v.own_keys:
            return self._own_spans(v, service, direction, zone, group, b_number, epoch, start, stop)
        table = v.table
        # `until` only decides whether the call outlasts its band: the search need not look past its end
        band, until = v.clock.band_at(epoch + start, min(stop - start, self._horizon) if service == "voice" else 0)
        first = table.get((service, direction, zone, group, band))
        if first is None:
            enters = f" (the call enters version {v.version} after {start} s)" if start else ""
            raise _Unrated(UnratedReason.NO_RATE,
                           f"{v.plan_id} v{v.version} has no rate for {service} {direction} in zone {zone} to "
                           f"{group or 'a number in no destination group'} ({b_number or '-'}) in band {band or '?'}{enters}",
                           v.plan_id)
        if not (service == "voice" and first.model.splits_by_band and until < stop - start):
            return [(start, stop, band, first)]
        spans: list[tuple[int, int, str, CompiledRate]] = []
        for s, e, b in v.clock.spans(epoch + start, stop - start):
            rate = first if not spans else table.get((service, direction, zone, group, b))
            if rate is None:
                raise _Unrated(UnratedReason.NO_RATE,
                               f"{v.plan_id} v{v.version} has no rate for {service} to {group or '-'} in band {b} "
                               f"(the call enters it after {start + s} s)", v.plan_id)
            spans.append((start + s, start + e, b, rate))
        return spans

    def _own_spans(self, v: CompiledVersion, service: str, direction: str, zone: str, group: str, b_number: str, epoch: int,
                   start: int, stop: int) -> list[tuple[int, int, str, CompiledRate]]:
        """As :meth:`_spans` for traffic rows with a band set of their own price: at each instant the first such set whose
        band there has a row prices it, else the version's rows; cut wherever any of those bands changes."""
        key = (service, direction, zone, group)
        splits = service == "voice"
        spans: list[tuple[int, int, str, CompiledRate]] = []
        t, end = epoch + start, epoch + stop
        while True:
            band, until = v.clock.run(t, end) if splits else (v.clock.band_at(t, self._horizon)[0], end)
            rate = v.table.get((*key, band))
            label, owned = band, False
            for clock, rows in v.own_bands:
                own, own_until = clock.run(t, end) if splits else (clock.band_at(t, self._horizon)[0], end)
                until = min(until, own_until)
                hit = rows.get((*key, own))
                if hit is not None and not owned:
                    rate, label, owned = hit, own, True
            if rate is None:
                raise _Unrated(UnratedReason.NO_RATE,
                               f"{v.plan_id} v{v.version} has no rate for {service} {direction} in zone {zone} to "
                               f"{group or 'a number in no destination group'} ({b_number or '-'}) in band {band or '?'}"
                               + (f" (the call enters it after {t - epoch} s)" if t > epoch else ""), v.plan_id)
            if spans and spans[-1][3] is rate and spans[-1][2] == label:
                spans[-1] = (spans[-1][0], min(until, end) - epoch, label, rate)
            else:
                spans.append((t - epoch, min(until, end) - epoch, label, rate))
            if not splits or not rate.model.splits_by_band or until >= end:
                break
            t = until
        if spans[-1][1] != stop:
            spans[-1] = (spans[-1][0], stop, spans[-1][2], spans[-1][3])
        return spans

    def _price(self, v: CompiledVersion, service: str, direction: str, zone: str, group: str, prefix: str, b_number: str,
               epoch: int, units: int, wallet: dict[str, int] | None, facts: Callable[..., dict[str, Any]],
               cuts: Sequence[tuple[int, CompiledVersion]] = ()) -> Priced:
        spans = self._spans(v, service, direction, zone, group, b_number, epoch, 0, cuts[0][0] if cuts else units)
        if cuts and not spans[0][3].model.splits_by_band:
            cuts, spans = (), self._spans(v, service, direction, zone, group, b_number, epoch, 0, units)
        for k, (at, later) in enumerate(cuts):
            # a later version has its own groups and bands: the number is looked up again in it
            later_group = destination_of(later, service, direction, zone, b_number)[0]
            spans += self._spans(later, service, direction, zone, later_group, b_number, epoch, at,
                                 cuts[k + 1][0] if k + 1 < len(cuts) else units)
        parts = _parts(spans, units)
        priced = Priced(v, service, zone, group, prefix, units)
        priced.cuts = tuple((at, later.version) for at, later in cuts)
        if wallet:
            priced.uses = self._cover(wallet, parts, service, group, zone, lambda: facts(v, zone, group, units))
        self._settle(priced, spans, parts)
        if priced.gross:
            self._discount(priced, v, service, group, zone, units, lambda: facts(v, zone, group, units))
        return priced

    def _cover(self, wallet: dict[str, int], parts: list[Part], service: str, group: str, zone: str,
               facts: Callable[[], dict[str, Any]]) -> list[tuple[str, int]]:
        """Let the wallet's applicable bundles (by priority, then id) pay for billed units; consumes the wallet."""
        if not parts:
            return []
        known = self.compiled.bundles
        cache: list[dict[str, Any]] = []

        def facts_once() -> dict[str, Any]:
            if not cache:
                cache.append(facts())
            return cache[0]

        usable = sorted((b for bid, left in wallet.items() if left > 0 and (b := known.get(bid)) is not None
                         and b.applies(service, group, zone, facts_once() if b.predicate is not None else None)),
                        key=lambda b: (b.priority, b.id))
        uses: list[tuple[str, int]] = []
        for b in usable:
            left = wallet[b.id]
            took = 0
            for p in parts:
                if left == 0:
                    break
                take = min(p.units - p.covered, left)
                p.covered += take
                left -= take
                took += take
            if took:
                wallet[b.id] = left
                uses.append((b.id, took))
        return uses

    @staticmethod
    def _settle(priced: Priced, spans: list[tuple[int, int, str, CompiledRate]], parts: list[Part]) -> None:
        """Money of the spans' parts: exact integer sums over one denominator, rounded once where the plan says."""
        single = len(spans) == 1
        usage = den = 0
        nums: list[tuple[int, int]] = []
        uncovered = billed_any = False
        for i, (start, end, band, rate) in enumerate(spans):
            num, d, billed, covered, micros = _span_money(rate, parts if single else [p for p in parts if p.span == i])
            if billed != covered:
                uncovered = True
            if billed:
                billed_any = True
            priced.spans.append((start, end, band, rate, billed, covered, micros))
            if single:
                usage, den = num, d
            else:
                nums.append((num, d))
        if not uncovered and billed_any:
            priced.covered_all = True
            return  # wholly paid by bundles: no connect fee, no minimum charge
        if not single:
            den = lcm(*(d for _n, d in nums))
            usage = sum(n * (den // d) for n, d in nums)
        priced.usage_num, priced.total_num, priced.gross, priced.waived, priced.minimum, priced.maximum = _call_money(
            spans[0][3], usage, den, priced.units)
        priced.total_den = den
        priced.charge = priced.gross

    @staticmethod
    def _discount(priced: Priced, v: CompiledVersion, service: str, group: str, zone: str, units: int,
                  facts: Callable[[], dict[str, Any]]) -> None:
        net = priced.gross
        for d in v.discounts:
            if d.level != "cdr":
                continue
            if d.predicate is None:
                applies = (not d.services or service in d.services) and (not d.destinations or group in d.destinations)
            else:
                applies = d.applies(ChargeLine(priced.gross, service, group, zone, v.plan_id, units, facts()))
            if applies:
                off = max(d.on_cdr(net), -net)
                if off:
                    priced.lines.append(DiscountLine(d.id, off, d.name, service))
                    net += off
        priced.charge = net

    def _rated(self, cdr_id: str, b_number: str, p: Priced) -> RatedCdr:
        v = p.v
        spans = tuple(RatedSpan(s, e, b, r.id, billed, covered, micros) for s, e, b, r, billed, covered, micros in p.spans)
        uses = tuple(BundleUse(b, u) for b, u in p.uses)
        return RatedCdr(
            cdr_id, RatingStatus.RATED, charge_micros=p.charge, currency=v.currency, plan_id=v.plan_id, plan_version=v.version,
            service=p.service, destination=p.group, prefix=p.prefix, zone=p.zone, units=p.units, gross_micros=p.gross,
            spans=spans, bundle_usage=uses, discounts=tuple(p.lines), why=lambda: explain(p, b_number), flags=p.flags,
        )

    # == many rows ==============================================================================
    def rate_rows(self, rows: Iterable[Sequence[Any]], plans: str | Sequence[str] | Callable[[Sequence[Any]], str],
                  wallets: Wallets | None = None, header: Sequence[str] = COLUMNS) -> list[Row]:
        """Rate rows of the normalised layout; one :data:`Row` per input row, in order.

        ``rows``: a sequence of rows, or :class:`ColumnRows` (a CDR file's rows as columns, which the C loop reads
        where they are, building no row).  ``plans``: the tariff plan of every row, one per row, or a function of
        the row.  ``wallets``: the remaining units per bundle of each row's subscriber (dicts consumed in place, in
        row order): a dict of them by a_number, a list of them by row (None: no counters), :class:`WalletsByGroup`
        (each row's group, each group's dict by a_number), or a function ``(i, row) -> dict | None`` asked only
        when a bundle can apply.  Cell values may be text (CSV) or typed (store).
        """
        rows = rows if isinstance(rows, (list, tuple, ColumnRows)) else list(rows)
        out: list[Row] = []
        col = {name: i for i, name in enumerate(header)}
        wallet_of, wallet_mode = _wallet_access(wallets, col.get("a_number", -1))
        if isinstance(plans, str):
            plan_list: Sequence[str] | None = None
        elif callable(plans):
            plan_list = [plans(row) for row in rows]
        else:
            plan_list = plans if isinstance(plans, (list, tuple)) else list(plans)
        if any(n not in col for n in _NEEDED):
            for i, row in enumerate(rows):
                out.append(self._row_slow(i, row, plans if plan_list is None else plan_list[i], wallet_of, header))  # type: ignore[arg-type]
            return out
        where = tuple(col[n] for n in _NEEDED)
        single: str | None = plans if isinstance(plans, str) else None
        if single is not None and single not in self._minutes:
            self._minutes[single] = {}
        kernel = _kernel(rows) if self.use_kernel else None
        context = (*where, len(header), self._minutes, single, plan_list, self._minute,
                   wallet_of if wallet_mode == _BY_CALL else wallets, self.limits.max_volume_bytes, self.limits.max_events, RATED, "",
                   wallet_mode, col.get("a_number", 0), self._bands_of_call)
        n = len(rows)
        i = 0
        with collector_paused():   # many small acyclic result tuples (see engine.gcpause)
            self._rate_all(rows, out, kernel, context, where, single, plan_list, wallet_of, header)
        return out

    def rate_by_minute(self, rows: ColumnRows, plan_id: str, start: int, out: list[Row],
                       sums: tuple[set[str], dict[str, tuple[int, int]], list[int]] | None = None) -> int:
        """Rate rows of the normalised layout (:data:`COLUMNS`) held as columns, all of one plan, from ``start`` into
        ``out`` by the C loop alone, each row's wallet the one :attr:`minute_book` gives for its start minute (found in
        the minute's entry, with no look-up per row); the index of the first row the C loop does not take (the caller
        rates it with :meth:`rate_rows`, and may go on from the next), ``start`` in a build without the C loop.

        ``sums`` (settled, totals, where): a rated row whose service is in ``settled`` is not appended to ``out``
        but counted in ``totals[service]`` = (rows, charge), added to what is there; the index of every row that is
        appended goes to ``where`` (a charge of 2^40 micro-units or more is appended).  What-if adds up no more."""
        if self.minute_book is None:
            raise ValueError("wallets by start minute need a minute_book")
        try:
            from engine.rating._rowkernel import rate_columns
        except ImportError:  # pragma: no cover - a build without a C compiler
            return start
        if not self.use_kernel or len(rows.columns) != len(COLUMNS):
            return start
        context = self._minute_context(plan_id)
        before = len(out)
        with collector_paused():   # many small acyclic result tuples (see engine.gcpause)
            stop = rate_columns(rows.columns, len(rows), start, out, context, sums)
        # a charge beyond the bound is appended (not summed): rejected in place; what-if's estimate keeps the bundle
        # units it took (the walk has rated the rows after it already)
        for k in range(before, len(out) if self.may_exceed else before):
            if beyond_bound(out[k][1]):
                out[k] = _beyond_row(out[k])
        return stop

    def rate_by_minute_with(self, other: "Evaluator", rows: ColumnRows, plan_id: str, start: int, outs: tuple[list[Row], list[Row]],
                            sums: tuple[Any, Any]) -> tuple[int, bool]:
        """:meth:`rate_by_minute` for two evaluators (what-if's active and candidate sides) in one walk of the columns:
        each row rated by this one, then by ``other``, into ``outs`` with ``sums`` (each side's, in that order), as a
        :meth:`rate_by_minute` of each would rate it.  (the index of the first row the C loop does not take for both,
        whether this side took it: the caller then rates it for ``other`` only); ``(start, False)`` in a build without
        the C loop."""
        if self.minute_book is None or other.minute_book is None:
            raise ValueError("wallets by start minute need a minute_book")
        try:
            from engine.rating._rowkernel import rate_columns_both
        except ImportError:  # pragma: no cover - a build without a C compiler
            return start, False
        if not (self.use_kernel and other.use_kernel) or len(rows.columns) != len(COLUMNS):
            return start, False
        contexts = tuple(ev._minute_context(plan_id) for ev in (self, other))
        befores = [len(out) for out in outs]
        with collector_paused():   # many small acyclic result tuples (see engine.gcpause)
            stop, first = rate_columns_both(rows.columns, len(rows), start, outs, contexts, sums)
        # a charge beyond the bound is appended (not summed): rejected in place, as rate_by_minute does
        for ev, out, before in zip((self, other), outs, befores):
            for k in range(before, len(out) if ev.may_exceed else before):
                if beyond_bound(out[k][1]):
                    out[k] = _beyond_row(out[k])
        return stop, bool(first)

    def _minute_context(self, plan_id: str) -> tuple[Any, ...]:
        """The C loop's context for rows of one plan held as columns, wallets by start minute (:attr:`minute_book`)."""
        self._minutes.setdefault(plan_id, {})
        return (*_COLUMNS_NEEDED, len(COLUMNS), self._minutes, plan_id, None, self._minute, self.minute_book,
                self.limits.max_volume_bytes, self.limits.max_events, RATED, "", _BY_MINUTE, _COLUMNS_A, self._bands_of_call)

    def _rate_all(self, rows: Sequence[Sequence[Any]], out: list[Row], kernel: Callable[..., int] | None, context: tuple[Any, ...],
                  where: tuple[int, ...], single: str | None, plan_list: Sequence[str] | None, wallet_of: WalletOf | None,
                  header: Sequence[str]) -> None:
        check = self.may_exceed   # whether a charge may pass the bound (then each step's rows are checked)
        n = len(rows)
        i = 0
        while i < n:
            done = len(out)
            if kernel is not None:
                # the C loop takes every plain row it can; the Python loop then takes the one it stopped at
                i = kernel(rows, i, out, context)
                if i >= n:
                    if check:
                        i = _reject_beyond_bound(out, done, rows, wallet_of, i)
                    continue
                j = self._rate_block(rows, i, i + 1, out, where, single, plan_list, wallet_of)
            else:
                j = self._rate_block(rows, i, n, out, where, single, plan_list, wallet_of)
            if j < n and (kernel is None or j == i):
                # a row neither loop prices: the per-CDR way, with full validation
                out.append(self._row_slow(j, rows[j], single if plan_list is None else plan_list[j], wallet_of, header))  # type: ignore[arg-type]
                j += 1
            i = _reject_beyond_bound(out, done, rows, wallet_of, j) if check else j

    def _rate_block(self, rows: Sequence[Sequence[Any]], start: int, stop: int, out: list[Row], where: tuple[int, ...],
                    single: str | None, plan_list: Sequence[str] | None, wallet_of: WalletOf | None) -> int:
        """Rate rows ``start..stop`` the batch way into ``out``; the index of the first row that needs the per-CDR
        way (``stop`` when none)."""
        add = out.append
        i_svc, i_dir, i_start, i_b, i_dur, i_up, i_down, i_ev, i_vis = where
        zone_for = self.compiled.zone_for
        zero, one_event = _ZERO, _ONE_EVENT
        max_bytes, max_events, max_seconds = self.limits.max_volume_bytes, self.limits.max_events, self.limits.max_call_seconds
        minutes_of = self._minutes
        minutes = minutes_of[single] if single is not None else {}
        minutes_get = minutes.get
        miss = _MISS
        seconds_ok, voice_ok = _SECONDS, _VOICE_OK
        plan_id = single
        for i in range(start, stop):
            row = rows[i]
            try:
                text = row[i_start]
                # "YYYY-MM-DDTHH:MM:SSZ": the minute is checked once per distinct minute, the seconds here
                if text[16:] not in seconds_ok:
                    raise LookupError
                if plan_list is not None:
                    plan_id = plan_list[i]
                    minutes = minutes_of.get(plan_id)  # type: ignore[assignment]
                    if minutes is None:
                        minutes = minutes_of[plan_id] = {}
                    minutes_get = minutes.get
                key = text[:16]
                entry = minutes_get(key, miss)
                if entry is miss:
                    entry = self._minute(minutes, plan_id, key)  # type: ignore[arg-type]
                # no plan or version (entry None): the unpacking fails and the per-CDR way says why
                until, home, routes, groups_get, lengths, v, _groups, band, _epoch, _book = entry
                service = row[i_svc]
                spans = False
                if service == "voice":
                    units = int(row[i_dur])
                    if (row[i_up], row[i_down], row[i_ev]) not in voice_ok:
                        raise LookupError
                    # `until` never exceeds the longest call allowed: a longer one is caught here too
                    if units > until - 59 and units > until - int(text[17:19]):
                        if units > max_seconds:
                            raise LookupError   # the per-CDR way rejects it
                        spans = True   # crosses a band change: priced by spans below
                elif service == "data":
                    up, down = int(row[i_up]), int(row[i_down])
                    units = up + down
                    if row[i_dur] not in zero or row[i_ev] not in one_event or units > max_bytes or up < 0 or down < 0:
                        raise LookupError
                elif service in SERVICES:
                    ev = row[i_ev]
                    units = int(ev) if ev != "" else 1
                    if row[i_dur] not in zero or row[i_up] not in zero or row[i_down] not in zero or units > max_events:
                        raise LookupError
                else:
                    raise LookupError
                if units < 0 or (not spans and int(text[17:19]) >= until):
                    raise LookupError   # (an event after a band change within its minute: the per-CDR way finds the band)
                number = row[i_b]
                # longest prefix first; a length beyond the number probes the whole number, which is then the
                # longest prefix it can have, so no length check is needed
                for length in lengths:
                    group = groups_get(number[:length])
                    if group is not None:
                        break
                else:
                    group = ""
                visited = row[i_vis]
                direction = row[i_dir]
                if visited or direction != "originating":
                    if not visited and direction == "":
                        direction = "originating"
                    zone = zone_for(visited) if visited else "home"
                    route = routes[(service, direction, zone, group)]
                else:
                    zone = "home"
                    route = home[service][group]
                # no rate (or no zone): route None, the unpacking fails and the per-CDR way says why
                rid, memo, plain, conditional, discounts, grid, _c_rate = route
                if spans:   # a route without bundles asks for no wallet (as the C loop: a what-if book opens none for it)
                    add(self._priced_row(i, row, v, plan_id, text, service, direction, zone, group, number, units,
                                         wallet_of if plain is not None else None))
                    continue
                # usage rounded up to the end of its increment prices alike (one memo entry per increment, see OneSpanMemo)
                hit = memo[grid_end(grid, units)]
                charge, billed = hit[0], hit[1]
                uses = None
                if plain is not None and wallet_of is not None and billed:
                    wallet = wallet_of(i, row)
                    if wallet:
                        best = None
                        for bid, left in wallet.items():
                            if left > 0:
                                if bid in plain:
                                    if best is None or plain[bid] < best[0]:
                                        best = (plain[bid], bid, left)
                                elif bid in conditional:
                                    raise LookupError  # a bundle with a condition: evaluate it the per-CDR way
                        if best is not None:
                            if best[2] < billed:   # the bundle covers part of the call: priced by parts
                                add(self._priced_row(i, row, v, plan_id, text, service, direction, zone, group, number,
                                                     units, wallet_of))
                                continue
                            wallet[best[1]] = best[2] - billed
                            uses = ((best[1], billed),)
                            charge = 0
                if discounts is not None and charge:
                    net = charge
                    lines = []
                    for d in discounts:
                        off = d.on_cdr(net)
                        if off < -net:
                            off = -net
                        if off:
                            lines.append(DiscountLine(d.id, off, d.name, service))
                            net += off
                    charge = net
                    hit = (*hit, tuple(lines))   # the discount lines, for rated_of
                add((RATED, charge, rid, uses, v, group, zone, units, band, hit))
            except (LookupError, ValueError, TypeError):
                return i
        return stop

    def _priced_row(self, i: int, row: Sequence[Any], v: CompiledVersion, plan_id: str | None, text: str, service: str, direction: str,
                    zone: str, group: str, number: str, units: int, wallet_of: WalletOf | None) -> Row:
        """A row the batch loop has read and checked but whose price is not one memoised span (a call crossing a
        band change, a bundle covering part of it): the per-CDR pricing on the values read, as the per-CDR way
        would do after parsing the row again.  LookupError sends the row to the per-CDR way (a condition to
        evaluate, a later band without a rate, a version changing within the start minute)."""
        epoch = self._epoch_of_minute(text[:16])
        if epoch is None:
            raise LookupError
        epoch += int(text[17:19])
        plan = self.compiled.plans.get(plan_id) if plan_id is not None else None
        if plan is None or plan.version_at(epoch) is not v or any(d.predicate is not None for d in v.discounts if d.level == "cdr"):
            raise LookupError   # (a discount's condition is read after the bundles are spent: never start that here)
        if plan.split and service == "voice":
            later = plan.next_start(epoch)
            if later is not None and later < epoch + units:
                raise LookupError   # version_change: split -- the call runs into the next version: the per-CDR way cuts it
        wallet = wallet_of(i, row) if wallet_of is not None else None

        def facts(*_args: Any) -> dict[str, Any]:
            raise LookupError   # a condition needs the whole CDR: the per-CDR way (nothing is consumed before this)

        try:
            p = self._price(v, service, direction, zone, group, v.index.lookup(number)[1], number, epoch, units, wallet, facts)
        except _Unrated:
            raise LookupError from None
        return (RATED, p.charge, p.rate_ids, tuple(p.uses) or None, p.v, p.group, p.zone, units, p.spans[0][2], p)

    def _minute(self, minutes: dict[str, tuple[Any, ...] | None], plan_id: str, key: str) -> tuple[Any, ...] | None:
        """Per start minute of a plan: (seconds the band lasts from the minute, routes of home originating traffic,
        routes of other traffic, prefix index's get, its lengths, version, its groups, band, epoch of the minute, the
        minute's wallets by a_number from :attr:`minute_book` or None)."""
        epoch = self._epoch_of_minute(key)
        plan = self.compiled.plans.get(plan_id)
        entry: tuple[Any, ...] | None = None
        stretch = self._stretch(plan, epoch) if plan is not None and epoch is not None else None
        if stretch is not None and epoch is not None:
            v, band, shared, true_end, nxt = stretch
            horizon = self.limits.max_call_seconds
            # capped at the longest call allowed, so the batch loop's crossing test also catches longer calls
            until = horizon if true_end is None else min(true_end - epoch, horizon)
            if nxt is not None:   # version_change: split -- a call running into the next version takes the per-CDR way
                until = min(until, nxt - epoch)
            book = self.minute_book(plan_id, key, epoch) if self.minute_book is not None else None
            entry = (until, shared[0], shared[1], v.index.groups_get, v.index.lengths, v, v.index.groups, band, epoch, book)
        if len(minutes) > 500_000:
            minutes.clear()
        minutes[key] = entry
        return entry

    def _stretch(self, plan: CompiledPlan, epoch: int) -> tuple[Any, ...] | None:
        """(version, band, its routes, the instant the band ends or None when that is beyond the longest call of
        every minute of the stretch, the next version's start for version_change: split or None) at ``epoch``: the
        same for every instant of a stretch of one version and one band run, so a file with a row in every minute
        asks the band clock a few times a day, not once a minute.  None: no version in force."""
        return self._stretches[plan.id].find(epoch, lambda: self._stretch_at(plan, epoch))

    def _stretch_at(self, plan: CompiledPlan, epoch: int) -> tuple[int, tuple[Any, ...] | None]:
        """(end of the stretch, :meth:`_stretch`'s answer) from ``epoch``."""
        v = plan.version_at(epoch)
        later = plan.next_start(epoch)
        end = later if later is not None else _NEVER
        answer = None
        if v is not None:
            horizon = self.limits.max_call_seconds
            # the band run from here, looked for up to a day beyond the longest call: a minute of the run that far
            # before its end (or the search's) sees the same band, and its band lasts min(end - minute, horizon)
            limit = epoch + horizon + 86_400
            band, band_end = v.clock.run(epoch, limit)
            true_end: int | None = band_end
            if band_end >= limit:
                true_end, band_end = None, limit - horizon   # (the band lasts at least `horizon` up to there)
            end = min(end, band_end)
            shared = self._routes.get((id(v), band))
            if shared is None:
                home = {svc: _Routes(self, v, band, svc) for svc in SERVICES}
                shared = self._routes[(id(v), band)] = (home, _Routes(self, v, band, ""))
            answer = (v, band, shared, true_end, later if plan.split else None)
        return end, answer

    def _bands_of_call(self, plan_id: str, v: CompiledVersion, epoch: int, units: int) -> tuple[tuple[int, str, dict[str, _Routes]], ...] | None:
        """For the C loop, a voice call that crosses a band change: ((end offset, band, routes of home originating
        traffic by service), ...) for each span, cut as :meth:`_spans` cuts it; None where the per-CDR pricing does
        more than cut by bands (version_change: split into the next version, a discount with a condition) or the
        call is longer than the limits allow (then the per-CDR way rejects it)."""
        if units > self.limits.max_call_seconds:
            return None
        plan = self.compiled.plans.get(plan_id)
        if plan is None or plan.version_at(epoch) is not v or any(d.predicate is not None for d in v.discounts if d.level == "cdr"):
            return None
        if plan.split:
            later = plan.next_start(epoch)
            if later is not None and later < epoch + units:
                return None
        # cut as BandClock.spans cuts it, but asked from the start of the minute and then from each band change:
        # the clock keeps its answers by instant, and every call of a minute, every call crossing one change, asks
        # for the same instants (a real file's calls each start on a second of their own)
        clock, stop = v.clock, epoch + units
        band, end = clock.run(epoch - epoch % 60, stop)
        if end <= epoch:   # the band changed within the minute, before the call started
            band, end = clock.run(epoch, stop)
        out = []
        while True:
            shared = self._routes.get((id(v), band))
            if shared is None:
                home = {svc: _Routes(self, v, band, svc) for svc in SERVICES}
                shared = self._routes[(id(v), band)] = (home, _Routes(self, v, band, ""))
            out.append((min(end, stop) - epoch, band, shared[0]))
            if end >= stop:
                return tuple(out)
            band, end = clock.run(end, stop)

    def _epoch_of_minute(self, key: str) -> int | None:
        """``YYYY-MM-DDTHH:MM`` -> UTC epoch seconds; None when not a real minute within the limits."""
        hhmm = key[11:13] + key[14:16]
        # (four ASCII digits: hours below 24 and minutes below 60 by their text)
        if not (len(key) == 16 and key[10] == "T" and key[13] == ":" and hhmm.isascii() and hhmm.isdigit()
                and hhmm < "24" and hhmm[2] < "6"):
            return None
        day = self._days.get(key[:10])
        if day is None:
            try:
                day = (date.fromisoformat(key[:10]).toordinal() - _EPOCH_ORDINAL) * 86400
            except ValueError:
                return None
            if len(self._days) > 100_000:
                self._days.clear()
            self._days[key[:10]] = day
        hm = int(hhmm)
        epoch = day + hm // 100 * 3600 + hm % 100 * 60
        return epoch if EARLIEST_EPOCH <= epoch < LATEST_EPOCH else None

    def _route(self, v: CompiledVersion, band: str, rkey: tuple[str, str, str, str]) -> tuple[Any, ...] | None:
        """(rate id, its one-span memo, plain bundles {id: (priority, id)} or None, bundles with a condition, CDR
        discounts or None, the memo's key grid) for one kind of traffic in one band; None when the per-CDR way must
        answer."""
        service, direction, zone, group = rkey
        rate = v.table.get((service, direction, zone, group, band)) if zone else None
        route: tuple[Any, ...] | None = None
        # a rate that flags calls reaching its maximum, or traffic rows with their own band set price: the per-CDR way
        if rate is not None and not rate.flags_calls and (service, direction, zone, group) not in v.own_keys:
            plain: dict[str, tuple[int, str]] = {}
            conditional: set[str] = set()
            for bid, b in self._bundle_index:
                if b.service == service and (not b.destinations or group in b.destinations) and (
                        not b.zones or zone in b.zones or "any" in b.zones):
                    if b.predicate is None:
                        plain[bid] = (b.priority, bid)
                    else:
                        conditional.add(bid)
            cdr_discounts: list[DiscountModel] = [d for d in v.discounts if d.level == "cdr" and (not d.services or service in d.services)
                                                  and (not d.destinations or group in d.destinations)]
            if not any(d.predicate is not None for d in cdr_discounts):
                memo = self.compiled.memos.get(rate.id)
                if memo is None:
                    memo = self.compiled.memos[rate.id] = OneSpanMemo(rate)
                route = (rate.id, memo, plain or (None if not conditional else {}), conditional, tuple(cdr_discounts) or None,
                         rate.model.memo_grid, _kernel_rate(rate))
        return route

    @classmethod
    def one_span(cls, rate: CompiledRate, units: int) -> tuple[int, int, int]:
        """The charge, billed units and span micros of one span of ``units`` at ``rate`` without bundles: the pricing
        code's own answer, which the rate's memo keeps for the batch loops."""
        # (what _settle does for one span without bundles, without its record: the memos fill many thousands)
        parts: list[Part] = []
        rate.model.parts(0, 0, units, units, parts)
        num, den, billed, _covered, micros = _span_money(rate, parts)
        return _call_money(rate, num, den, units)[2], billed, micros

    def _row_slow(self, i: int, row: Sequence[Any], plan_id: str, wallet_of: WalletOf | None, header: Sequence[str]) -> Row:
        """One row the per-CDR way: full validation, then the same pricing."""
        if len(row) != len(header):
            return (REJECTED, 0, f"rejected: expected {len(header)} columns, got {len(row)}", None, None, "", "", 0, "", None)
        try:
            cdr = from_row(dict(zip(header, ("" if x is None else x if isinstance(x, str) else str(x) for x in row))))
            service = Service(cdr.service).value
            problems = self.limits.problems(cdr)
            if problems:
                raise CdrValueError(*problems[0])
        except (CdrValueError, ValueError) as exc:
            return (REJECTED, 0, f"rejected: {exc}", None, None, "", "", 0, "", None)
        direction = cdr.direction.value
        epoch = int(cdr.start_time.timestamp())
        units = _units(cdr, service)
        wallet: dict[str, int] | None = None
        plan = self.compiled.plans.get(plan_id)
        v = plan.version_at(epoch) if plan is not None else None
        if wallet_of is not None and v is not None:
            wallet = wallet_of(i, row)
        try:
            p = self.price(plan_id, service, direction, cdr.visited_network, cdr.b_number, epoch, units, wallet,
                           lambda v, zone, group, units: _facts_of_cdr(cdr, v, service, direction, zone, group, units))
        except _Unrated as u:
            return (UNRATED, 0, f"{u.code.value}: {u.message}", None, v, "", "", units, "", None)
        return (RATED, p.charge, p.rate_ids, tuple(p.uses) or None, p.v, p.group, p.zone, units, p.spans[0][2], p)

    # == call attempts ===========================================================================
    def authorise(self, barring: Any, subscriber: Any, destination: str, service: str, roaming: bool, visited: str,
                  at: datetime, credit_used: int) -> tuple[Any, str]:
        """May ``subscriber`` make this attempt at ``at``?  ``(BarringDecision, destination group)``.

        The one decision AuthorizeCall and QA replay share: the barring rules see the subscriber's tenant, plan
        and flags, the dialled number's group over every destination group of the plan set (a national-only
        plan still knows that 1415... is DST_NORTH_AMERICA), roaming, credit used against the limit, and the
        local time in the tariff plan's time zone.  A subscriber that is not active may only make attempts a
        rule explicitly allows (emergency numbers): that refusal carries no rule id.
        """
        from engine.eventrules import BarringDecision, CallAttempt

        group = self.all_groups().lookup(destination)[0] if destination else ""
        plan = self.compiled.plan(subscriber.tariff_plan)
        version = plan.version_at(int(at.timestamp())) if plan is not None else None
        attempt = CallAttempt(
            msisdn=subscriber.msisdn, tenant=subscriber.tenant_id, plan_id=subscriber.tariff_plan, service=service,
            destination=destination, destination_group=group, roaming=roaming or bool(visited), visited_network=visited,
            credit_used_micros=credit_used, credit_limit_micros=subscriber.credit_limit_micros,
            flags=frozenset(subscriber.barring_flags), at=at.astimezone(version.clock.tz) if version is not None else at,
        )
        decision = barring.authorise(attempt)
        status = getattr(subscriber.status, "value", subscriber.status)
        if status != "active" and not (decision.allowed and decision.rule_id):
            decision = BarringDecision(False, "bar", None, f"subscriber is {status}: only calls a rule always allows "
                                                           f"(such as emergency numbers) go through")
        return decision, group

    def all_groups(self) -> PrefixIndex:
        """Longest-prefix index over every destination group of the plan set (for barring, not pricing)."""
        if self._all_groups is None:
            ir = self.compiled.to_ir()["destinations"]
            self._all_groups = prefix_index(ir, sorted(ir))
        return self._all_groups

    # == detail of a rated row ==================================================================
    def rated_of(self, row: Row, cdr: MediatedCdr, plan_id: str) -> RatedCdr:
        """The RatedCdr of a row :meth:`rate_rows` rated (for ``cdr``, that row's CDR), written from what the batch
        loop kept: spans, bundle use and gross without pricing again; the explanation prices again when read."""
        status, charge, what, uses, v, group, zone, units, band, how = row
        if status != RATED:
            return RatedCdr(cdr.cdr_id, RatingStatus(status), reason=what, plan_id=plan_id if status == UNRATED else "",
                            why=f"not rated: {what.split(': ', 1)[-1]}")
        if isinstance(how, Priced):
            return self._rated(cdr.cdr_id, cdr.b_number, how)
        if how is None:
            return self.rate_cdr(cdr, plan_id, dict(uses) if uses else None)
        assert v is not None
        if len(how) == 2:   # priced by parts in the C loop (band crossings, bundles paying part): its spans kept
            return RatedCdr(
                cdr.cdr_id, RatingStatus.RATED, charge_micros=charge, currency=v.currency, plan_id=v.plan_id, plan_version=v.version,
                service=cdr.service.value, destination=group, prefix=v.index.lookup(cdr.b_number)[1], zone=zone, units=units,
                gross_micros=how[0], spans=tuple(RatedSpan(*s) for s in how[1]),
                bundle_usage=tuple(BundleUse(b, u) for b, u in uses or ()),
                why=lambda: self.rate_cdr(cdr, plan_id, dict(uses) if uses else None).explanation)
        gross, billed, span_micros = how[0], how[1], how[2]
        lines = how[3] if len(how) > 3 else ()   # CDR discounts the batch loop applied
        covered = billed if uses else 0
        return RatedCdr(
            cdr.cdr_id, RatingStatus.RATED, charge_micros=charge, currency=v.currency, plan_id=v.plan_id, plan_version=v.version,
            service=cdr.service.value, destination=group, prefix=v.index.lookup(cdr.b_number)[1], zone=zone, units=units,
            gross_micros=0 if covered else gross,
            spans=(RatedSpan(0, units, band, what, billed, covered, 0 if covered else span_micros),),
            bundle_usage=tuple(BundleUse(b, u) for b, u in uses or ()), discounts=lines,
            why=lambda: self.rate_cdr(cdr, plan_id, dict(uses) if uses else None).explanation)

    def detail(self, row: Sequence[Any], plan_id: str, uses: Sequence[tuple[str, int]] | None,
               header: Sequence[str] = COLUMNS) -> RatedCdr:
        """The full RatedCdr of a row :meth:`rate_rows` rated, given the bundle use it reported: the same
        pricing again, with a wallet holding exactly what the row took (so it covers the same units)."""
        cdr = from_row(dict(zip(header, ("" if x is None else x if isinstance(x, str) else str(x) for x in row))))
        return self.rate_cdr(cdr, plan_id, dict(uses) if uses else None)


_SCOPES = {"per_call": 0, "per_span": 1, "per_increment": 2}
_MODES = {RoundingMode.UP: 0, RoundingMode.DOWN: 1, RoundingMode.HALF_UP: 2, RoundingMode.HALF_EVEN: 3}


def _kernel_rate(rate: CompiledRate) -> tuple[Any, ...] | None:
    """A stepped rate as the C loop prices a call by parts (a band crossing, bundles paying part of it): (steps
    ((from, price, per, increment, price of one increment rounded), ...), denominator, scope, rounding mode, decimals,
    connect fee, minimum, maximum or -1, charged in full beyond the maximum, fee waived for a zero-unit call).
    None for another model: such calls go to the Python pricing."""
    model = rate.model
    if not isinstance(model, SteppedModel) or not model.steps or model.steps[0][0] != 0:
        return None
    r = rate.rounding
    if r.scope not in _SCOPES or r.mode not in _MODES:
        return None
    steps = tuple((f, p, per, inc, model.each[(p, per, inc)]) for f, p, per, inc in model.steps)
    return (steps, model.den, _SCOPES[r.scope], _MODES[r.mode], r.decimals, rate.connect_fee, rate.minimum_charge,
            -1 if rate.maximum_cost is None else rate.maximum_cost, int(rate.max_charge_full), int(rate.waive_unanswered))


def _kernel(rows: Sequence[Sequence[Any]] = ()) -> Callable[..., int] | None:
    """The C loop for these rows, called as ``kernel(rows, start, out, context)``: rows held as columns
    (:class:`ColumnRows`) are read column by column where they are."""
    try:
        from engine.rating._rowkernel import rate_block, rate_columns
    except ImportError:  # pragma: no cover - a build without a C compiler: the Python loop alone
        return None
    if isinstance(rows, ColumnRows):
        return lambda held, start, out, context: rate_columns(held.columns, len(held), start, out, context)
    return rate_block


class _Routes(dict[Any, Any]):
    """Routes of one version and band, built on first use: by group for home originating traffic of one service,
    else by (service, direction, zone, group)."""

    def __init__(self, evaluator: "Evaluator", v: CompiledVersion, band: str, service: str) -> None:
        super().__init__()
        self.evaluator, self.v, self.band, self.service = evaluator, v, band, service

    def __missing__(self, key: Any) -> tuple[Any, ...] | None:
        rkey = (self.service, "originating", "home", key) if self.service else key
        route = self[key] = self.evaluator._route(self.v, self.band, rkey)
        return route


class OneSpanMemo(dict[int, tuple[int, int, int]]):
    """A rate's one-span results by usage key, filled by :meth:`Evaluator.one_span` on first use."""

    def __init__(self, rate: Any) -> None:
        super().__init__()
        self.rate = rate

    def __missing__(self, key: int) -> tuple[int, int, int]:
        # the batch loops ask by usage rounded up to the end of its increment on the model's memo grid (whole
        # increments, tier blocks; see ChargeModel.memo_grid), which prices exactly like the usage itself: many data
        # volumes and short calls share one entry
        if len(self) > _MEMO_SIZE:
            self.clear()
        hit = self[key] = Evaluator.one_span(self.rate, key)
        return hit


def _charges_within_bound(compiled: CompiledPlans, limits: CdrLimits) -> bool:
    """Whether every rate of a plan set charges any CDR ``limits`` allow at most MAX_AMOUNT_MICROS: the dearest price
    per unit of each rate times the most units its unit may come to (plus an increment), plus its fees; a rate of a
    model this does not know may exceed.  (Money-off discounts only lower a charge.)"""
    most = {"second": limits.max_call_seconds, "byte": limits.max_volume_bytes, "event": limits.max_events}
    anything = max(most.values())
    for rate in compiled.rates.values():
        model = rate.model
        if isinstance(model, SteppedModel) and model.steps:
            per_unit = max(Fraction(p, per) for _f, p, per, _inc in model.steps)
            extra = max(inc for _f, _p, _per, inc in model.steps)
            flat = 0
        elif isinstance(model, TieredModel) and model.levels:
            per_unit = Fraction(max(level[1] for level in model.levels), model.per)
            extra = model.increment
            flat = sum(level[2] for level in model.levels)
        else:
            return False
        worst = per_unit * (most.get(rate.unit, anything) + extra) + flat + rate.connect_fee + rate.minimum_charge
        if worst > MAX_AMOUNT_MICROS:
            return False
    return True


def _beyond_reason(charge: int, currency: str) -> str:
    return (f"rejected: charge: {format_micros(charge)} {currency} (the plan's prices times this usage) is beyond what one CDR "
            f"is charged: at most {MAX_AMOUNT_MICROS // MICROS} currency units")


def _reject_beyond_bound(out: list[Row], done: int, rows: Sequence[Any], wallet_of: WalletOf | None, upto: int) -> int:
    """The rows rated last (``out[done:]``, ``out[k]`` being row ``k``) checked against MAX_AMOUNT_MICROS: the first
    whose charge is beyond (a huge price times a long call or session) is rejected with its reason, and what it and
    the rows after it took of their bundles goes back, those rows to be rated again: no charge that large is stored,
    summed on a bill or sent as an int64, and no bundle unit is spent on it.  Where to go on from (``upto`` when
    every row is within the bound)."""
    bound = MAX_AMOUNT_MICROS
    if len(out) <= done:
        return upto
    charges = [r[1] for r in islice(out, done, None)]
    if max(charges) <= bound and min(charges) >= -bound:
        return upto
    for k in range(done, len(out)):
        charge = out[k][1]
        if -bound <= charge <= bound:
            continue
        if wallet_of is not None:
            for j in range(k, len(out)):
                uses = out[j][3]
                if uses:
                    _give_back(wallet_of(j, rows[j]), uses)
        rejected = _beyond_row(out[k])
        del out[k:]
        out.append(rejected)
        return k + 1
    return upto


def _beyond_row(row: Row) -> Row:
    return (REJECTED, 0, _beyond_reason(row[1], getattr(row[4], "currency", "")), None, None, "", "", 0, "", None)


def _give_back(wallet: dict[str, int] | None, uses: Iterable[tuple[str, int]]) -> None:
    if wallet is not None:
        for bid, units in uses:
            wallet[bid] = wallet.get(bid, 0) + units


def row_of(cdr: MediatedCdr) -> tuple[Any, ...]:
    """A CDR as a typed row of the normalised layout (what the CDR store keeps), without text round trips."""
    return (cdr.cdr_id, cdr.source, cdr.origin_id, cdr.service.value if hasattr(cdr.service, "value") else cdr.service,
            cdr.direction.value if hasattr(cdr.direction, "value") else cdr.direction, format_time(cdr.start_time),
            cdr.a_number, cdr.b_number, cdr.imsi, cdr.duration_seconds, cdr.volume_up_bytes, cdr.volume_down_bytes,
            cdr.event_count, cdr.visited_network, cdr.supplementary_code, cdr.charge_micros, cdr.charge_currency, cdr.tenant,
            encode_attributes(cdr.attributes) if cdr.attributes else "")


def _span_money(rate: CompiledRate, parts: list[Part]) -> tuple[int, int, int, int, int]:
    """One span's money: (exact numerator, its denominator, billed units, units paid by bundles, span micros)."""
    model = rate.model
    num, d = model.amount_num(parts), model.den
    if rate.rounding.scope == "per_span":
        num, d = round_micros(num, d, rate.rounding.mode, rate.rounding.decimals), 1
    billed = covered = 0
    for p in parts:
        billed += p.units
        covered += p.covered
    return num, d, billed, covered, num // d if num % d == 0 else divide_rounded(num, d, RoundingMode.HALF_EVEN)


def _call_money(lead: CompiledRate, usage: int, den: int, units: int) -> tuple[int, int, int, bool, bool, bool]:
    """A call's money from its usage (``usage / den`` micros) by the first span's rate: the connect fee (waived for a
    zero-unit call if the rate says so), then the minimum charge, then the maximum cost, then one rounding.
    (usage with the fee, total, rounded micros, fee waived, minimum applied, maximum reached)."""
    waived = lead.waive_unanswered and units == 0 and lead.connect_fee > 0
    usage += (0 if waived else lead.connect_fee) * den
    total = usage
    minimum = maximum = False
    if total < lead.minimum_charge * den:
        minimum = True
        total = lead.minimum_charge * den
    if lead.maximum_cost is not None and total > lead.maximum_cost * den:
        maximum = True
        if not lead.max_charge_full:
            total = lead.maximum_cost * den
    r = lead.rounding
    return usage, total, round_micros(total, den, r.mode, r.decimals), waived, minimum, maximum


def _parts(spans: list[tuple[int, int, str, CompiledRate]], units: int) -> list[Part]:
    parts: list[Part] = []
    t = 0
    last = len(spans) - 1
    for i, (_start, end, _band, rate) in enumerate(spans):
        t = rate.model.parts(i, t, end if i < last else units, units, parts)
    return parts


def destination_of(v: CompiledVersion, service: str, direction: str, zone: str,
                   b_number: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """``(group, prefix, passed over)``: the longest prefix whose group the version prices for this service, direction
    and zone (in some band), by priority among groups sharing a prefix.  When none is, the longest prefix's group
    (which then says why nothing prices the CDR): a destination-wide row would have priced every group alike."""
    group, prefix = v.index.lookup(b_number)
    priced = v.priced
    if not group or (service, direction, zone, group) in priced:
        return group, prefix, ()
    passed: list[tuple[str, str]] = []
    for candidate, at in v.index.candidates(b_number):
        if (service, direction, zone, candidate) in priced:
            return candidate, at, tuple(passed)
        passed.append((candidate, at))
    return group, prefix, ()


def _units(cdr: MediatedCdr, service: str) -> int:
    if service == "voice":
        return cdr.duration_seconds
    if service == "data":
        return cdr.volume_up_bytes + cdr.volume_down_bytes
    return cdr.event_count


def _facts_of_cdr(cdr: MediatedCdr, v: CompiledVersion, service: str, direction: str, zone: str, group: str,
                  units: int) -> dict[str, Any]:
    """What applicability conditions (bundles, discounts) can test."""
    facts: dict[str, Any] = {
        "service": service, "direction": direction, "zone": zone, "destination": group, "units": units,
        "a_number": cdr.a_number, "b_number": cdr.b_number, "imsi": cdr.imsi, "tenant": cdr.tenant,
        "visited_network": cdr.visited_network, "plan": v.plan_id, "plan_version": v.version,
        "source": cdr.source, "supplementary_code": cdr.supplementary_code,
    }
    for k, val in cdr.attributes.items():
        facts.setdefault(k, val)
    return facts


def _iso(epoch: int) -> str:
    from datetime import timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def _unrated(cdr_id: str, u: _Unrated) -> RatedCdr:
    return RatedCdr(cdr_id, RatingStatus.UNRATED, reason=f"{u.code.value}: {u.message}", plan_id=u.plan_id,
                    why=f"not rated: {u.message}")


_UNIT_NAMES = {"voice": "s", "data": "B"}


def explain(p: Priced, b_number: str) -> str:
    """The explanation of a priced CDR, in words."""
    v = p.v
    cur = v.currency
    unit = _UNIT_NAMES.get(p.service, " events")
    dest = f"{p.group} (prefix {p.prefix})" if p.group else "no destination group"
    out = [f"{plan_id} has no rate ({why}): priced by its parent" for plan_id, why in p.via]
    out.append(f"{v.plan_id} v{v.version}: {p.service} {p.units}{unit} to {b_number or '-'} -> {dest}, zone {p.zone}")
    for group, prefix in p.passed:
        out.append(f"passed over {group} (prefix {prefix}): {v.plan_id} v{v.version} has no rate for this {p.service} "
                   f"traffic (direction, zone {p.zone}) to it")
    for i, (s, e, b, r, billed, covered, micros) in enumerate(p.spans, 1):
        by_bundles = f", {covered}{unit} from bundles" if covered else ""
        out.append(f"span {i}: units {s}-{e} in band {b} at {r.id}, billed {billed}{unit}{by_bundles} = {format_amount(micros, cur)}")
    for at, version in p.cuts:
        out.append(f"from {at}{unit} the call is in version {version} (version_change: split): its rates price the rest")
    for bid, units in p.uses:
        out.append(f"bundle {bid} used {units}{unit}")
    lead = p.spans[0][3]
    if p.covered_all:
        out.append("fully covered by bundles: no connect fee, no minimum charge")
    else:
        if p.waived:
            out.append(f"connect fee {format_amount(lead.connect_fee, cur)} waived (a zero-unit call: connect_fee_unanswered: waive)")
        elif lead.connect_fee:
            out.append(f"connect fee {format_amount(lead.connect_fee, cur)}")
        usage = fraction_text(p.usage_num, p.total_den, cur)
        if p.minimum:
            out.append(f"minimum charge {format_amount(lead.minimum_charge, cur)} applies (usage {usage})")
        if p.maximum and lead.maximum_cost is not None:
            what = {"free_beyond": "free beyond it", "cap": "charge capped at it", "cut": "call should have been cut at it"}.get(
                lead.beyond, "the call should have been disconnected when it cost that much: flagged max-cost-disconnect, "
                             + ("charged in full" if lead.max_charge_full else "charged the maximum"))
            out.append(f"maximum cost {format_amount(lead.maximum_cost, cur)} ({what}; uncapped {usage})")
        rounding = lead.rounding
        if p.total_num % p.total_den or p.total_num // p.total_den != p.gross:
            out.append(f"exact {fraction_text(p.total_num, p.total_den, cur)} rounded {rounding.mode.value} to {rounding.decimals} decimals "
                       f"= {format_amount(p.gross, cur)}")
    for line in p.lines:
        out.append(f"discount {line.discount_id} {format_amount(line.amount_micros, cur)}")
    out.append(f"charge {format_amount(p.charge, cur)} {cur}")
    return "; ".join(out)


__all__ = ["Evaluator", "MinuteBook", "Priced", "RATED", "REJECTED", "Row", "UNRATED", "WalletOf", "WalletsByGroup", "explain",
           "row_of"]
