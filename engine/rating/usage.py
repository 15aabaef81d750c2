"""The usage ledger, bundle counters and usage balances: what rating with counters reads and writes.

**The usage ledger** holds one row per CDR rated with counters, under the CDR's
tenant and stable ``cdr_id``: subscriber (``msisdn``), start time, service,
destination group, zone, units, charge and currency, tariff plan and version,
plan set version, status (``rated``, ``unrated``, ``rejected``) and the bundle
units it took.  Rating a CDR again *replaces* its row and first gives back
what the previous rating took, so a re-rate never charges or consumes twice.
Bill runs read rated usage from it: the rows of a tenant (and subscriber) with
``status = 'rated'`` and ``start_time`` in the bill period
(:meth:`UsageRepository.rated_usage`).

**Bundle counters** (remaining units per subscriber, bill cycle and bundle) and
**usage balances** (charged micros per subscriber, cycle and currency) always
equal what the ledger's rows took: every write of a chunk changes the three
together in one transaction.  The writes are conditional on the values read
(compare-and-set), so two replicas never spend the same units twice: the one
that loses the race rolls back and rates its chunk again.

A bill cycle is named by the month its first day falls in (``YYYY-MM``), in
the time zone of the tariff plan that rated the CDR: see :func:`cycle_of`.  An add-on purchase's counter has the
cycle ``+NNNNNN`` instead (engine.rating.addons), and a ledger row names the units it took of one as
``BN_...+NNNNNN``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Iterable, Protocol

from engine.rating.period import cycle_bounds

try:   # the wallets' loops in C (engine/rating/_chunkrows.c); the Python loops of Usage are its oracle
    from engine.rating._chunkrows import counter_changes as _counter_changes, wallets as _wallets_of
except ImportError:  # pragma: no cover - a build without a C compiler
    _counter_changes = _wallets_of = None   # type: ignore[assignment]

CounterKey = tuple[str, str, str]            # (tenant, msisdn, cycle)
ADD_ON_MARK = "+"   # the counter cycle of an add-on purchase is "+NNNNNN" (engine.rating.addons)

# a ledger row as rating writes it: a tuple of these, in this order (bundles as JSON text [[bundle, units], ...], start time
# an aware datetime, reason empty when rated); LedgerEntry is the same row as read back
LEDGER_FIELDS = ("tenant_id", "cdr_id", "msisdn", "cycle", "currency", "charge_micros", "bundles_json", "start_time", "service",
                 "destination_group", "zone", "units", "plan_set_version", "tariff_plan", "plan_version", "status", "reason")


def cycle_of(local_day: date, anchor_day: int = 1) -> str:
    """The cycle of a day (local to the plan): the month its cycle started in, e.g. ``2026-03`` for
    2026-03-20 with cycles anchored on the 15th, ``2026-02`` for 2026-03-10."""
    return cycle_bounds(anchor_day, local_day)[0].strftime("%Y-%m")


@dataclass(frozen=True)
class LedgerEntry:
    """One rated CDR as the ledger keeps it (money in micro-units)."""

    tenant_id: str
    cdr_id: str
    msisdn: str
    cycle: str
    currency: str
    charge_micros: int
    bundles: tuple[tuple[str, int], ...]
    start_time: datetime | None = None
    service: str = ""
    destination: str = ""
    zone: str = ""
    units: int = 0
    plan_set_version: int = 0
    tariff_plan: str = ""
    plan_version: int = 0
    status: str = "rated"
    reason: str = ""
    # whether its charge and bundle units count in the subscriber's balance and counters (a known subscriber)
    counted: bool = True


@dataclass(frozen=True, slots=True)
class RatedSubscriber:
    """What rating with counters needs of a subscriber (the subscriber store has the whole record)."""

    subscriber_id: str
    tenant_id: str
    msisdn: str
    tariff_plan: str
    billing_account: str
    status: str
    credit_limit_micros: int | None
    credit_currency: str
    anchor_day: int = 1   # the day its billing account's cycle starts (1 when it is on no account)
    # when the last add-on purchase of its number ends (store/plans.py, in the chunk's subscriber read): rating asks
    # for its purchases only for CDRs that start before; NO_ADD_ONS: it never bought one; None: not known (asked)
    add_ons_until: datetime | None = field(default=None, compare=False)


NO_ADD_ONS = datetime(1, 1, 2, tzinfo=timezone.utc)   # RatedSubscriber.add_ons_until of a number that never bought an add-on


@dataclass(slots=True)
class CounterRow:
    allowance: int
    remaining: int
    unit: str


class UsageRepository(Protocol):
    """Bulk reads and the one conditional write per chunk (store/plans.py implements it)."""

    def ledger_of(self, tenant_id: str, cdr_ids: Iterable[str]) -> dict[str, LedgerEntry]: ...
    def holdings_of(self, tenant_id: str, cdr_ids: Iterable[str]) -> list[tuple[str, str, str, str, int, str]]:
        """What the ledger rows of these CDRs took, as plain columns: ``(cdr_id, msisdn, cycle, currency,
        charge_micros, bundles_json)`` per stored row (rating a chunk needs only this of the rows it replaces)."""
        ...
    def take_holdings(self, tenant_id: str, cdr_ids: Iterable[str]) -> list[tuple[str, str, str, str, int, str]] | None:
        """What ``holdings_of`` gives, of rows the chunk's ``write_chunk`` on the same unit of work replaces (rewriting
        only those whose new value differs); None when another writer holds them (a lost race)."""
        ...
    def subscribers_of(self, msisdns: Iterable[str]) -> dict[str, RatedSubscriber]: ...
    def counters_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, CounterRow]]: ...
    def balances_of(self, keys: Iterable[CounterKey]) -> dict[CounterKey, dict[str, int]]: ...
    def write_chunk(self, entries: list[tuple[Any, ...]], replaced: set[tuple[str, str]],
                    counters: list[tuple[CounterKey, str, CounterRow, int | None]],
                    balances: list[tuple[CounterKey, str, int, int | None]]) -> bool:
        """Replace the ledger rows (``entries``: tuples of LEDGER_FIELDS; ``replaced``: the (tenant, cdr_id) of rows
        that exist), set counters and balances to their new values where they still hold the values read (``None``:
        a new row); False when another writer got there first (nothing written)."""
        ...
    def rated_usage(self, tenant_id: str, start: datetime, end: datetime, msisdn: str = "") -> list[LedgerEntry]: ...
    def held_by_stored(self, tenant_ids: set[str], start: datetime, end: datetime) -> "Held": ...


class Usage:
    """The counters and balances of a chunk in memory: read once, consumed in CDR order, written back once."""

    use_c = _wallets_of is not None   # False: the Python loops (the oracle the differential tests compare with)

    def __init__(self, repo: Any, keys: Iterable[CounterKey]) -> None:
        wanted = sorted(set(keys))
        self.counters: dict[CounterKey, dict[str, CounterRow]] = repo.counters_of(wanted) if wanted else {}
        self.balances: dict[CounterKey, dict[str, int]] = repo.balances_of(wanted) if wanted else {}
        # what was read, to write back only what changed, conditionally: a counter row keeps the remaining units read
        # (the wallets are consumed instead) except those ensure() adds; balances change in place, so a copy
        self._new: set[tuple[CounterKey, str]] = set()
        self._read_balances = {k: dict(by) for k, by in self.balances.items()}
        self._wallets: dict[CounterKey, dict[str, int]] = {}

    def ensure(self, key: CounterKey, bundle_id: str, allowance: int, unit: str) -> None:
        by = self.counters.get(key)
        if by is None:
            by = self.counters[key] = {}
        if bundle_id not in by:
            by[bundle_id] = CounterRow(allowance, allowance, unit)
            self._new.add((key, bundle_id))
            self._wallets.pop(key, None)

    def wallet(self, key: CounterKey) -> dict[str, int]:
        """Remaining units per bundle of a subscriber's cycle, as the evaluator consumes them (in place)."""
        w = self._wallets.get(key)
        if w is None:
            w = self._wallets[key] = {b: row.remaining for b, row in self.counters.get(key, {}).items()}
        return w

    def wallets(self, keys: Iterable[CounterKey | None]) -> list[dict[str, int] | None]:
        """The wallet of each key (None for None), in order: what a run of rows rates against."""
        have, wallet = self._wallets, self.wallet
        if self.use_c and type(keys) is list and type(self.counters) is dict:
            return _wallets_of(keys, have, self.counters)
        return [None if k is None else (have[k] if k in have else wallet(k)) for k in keys]

    def give_back(self, key: CounterKey, bundles: Iterable[tuple[str, int]], currency: str, charge: int) -> None:
        """What a rating took goes back (negative amounts take it again); an add-on's units (``BN_...+NNNNNN``,
        engine.rating.addons) go back to that purchase's counter."""
        w = self.wallet(key)
        for bid, units in bundles:
            if bid in w:
                w[bid] += units
            elif ADD_ON_MARK in bid:
                cut = bid.index(ADD_ON_MARK)
                bought = self.wallet((key[0], key[1], bid[cut:]))
                if bid[:cut] in bought:
                    bought[bid[:cut]] += units
        if charge:
            by = self.balances.setdefault(key, {})
            by[currency] = by.get(currency, 0) - charge

    def give_back_all(self, held: Iterable[tuple[CounterKey, dict[str, int], dict[str, int]]], sign: int = 1) -> None:
        """:meth:`give_back` of many cycles at once: ``(key, bundle units, charges by currency)`` each, taken again
        when ``sign`` is -1 (a chunk's re-rating gives back what the run's other CDRs hold, then takes it again)."""
        wallets, balances, wallet = self._wallets, self.balances, self.wallet
        for key, bundles, charges in held:
            if bundles:
                w = wallets.get(key)
                if w is None:
                    w = wallet(key)
                for bid, units in bundles.items():
                    if bid in w:
                        w[bid] += sign * units
                    elif ADD_ON_MARK in bid:
                        self.give_back(key, ((bid, sign * units),), "", 0)
            if charges:
                by = balances.get(key)
                if by is None:
                    by = balances[key] = {}
                for currency, micros in charges.items():
                    if micros:
                        by[currency] = by.get(currency, 0) - sign * micros

    def charged(self, key: CounterKey, currency: str) -> int:
        return self.balances.get(key, {}).get(currency, 0)

    def add_charge(self, key: CounterKey, currency: str, micros: int) -> None:
        if micros:
            by = self.balances.setdefault(key, {})
            by[currency] = by.get(currency, 0) + micros

    def changes(self) -> tuple[list[tuple[CounterKey, str, CounterRow, int | None]], list[tuple[CounterKey, str, int, int | None]]]:
        """What to write: (key, bundle, new row, remaining read or None) and (key, currency, new charged, read or None)."""
        counters: list[tuple[CounterKey, str, CounterRow, int | None]] = []
        add = counters.append
        new, all_rows = self._new, self.counters
        if self.use_c:
            counters = _counter_changes(self._wallets, all_rows, new, CounterRow)
        for key, w in self._wallets.items() if not self.use_c else ():
            if not w:
                continue
            rows = all_rows[key]
            for bid, remaining in w.items():
                row = rows[bid]
                was = row.remaining
                if new and (key, bid) in new:
                    add((key, bid, CounterRow(row.allowance, remaining, row.unit), None))
                elif was != remaining:
                    add((key, bid, CounterRow(row.allowance, remaining, row.unit), was))
        balances: list[tuple[CounterKey, str, int, int | None]] = []
        read_balances = self._read_balances
        for key, by in self.balances.items():
            read_by = read_balances.get(key)
            for currency, value in by.items():
                read = read_by.get(currency) if read_by is not None else None
                if read is None or read != value:
                    balances.append((key, currency, value, read))
        return counters, balances


def bundle_units(text: str) -> list[tuple[str, int]]:
    """The bundle units of a ledger row's ``bundles_json`` (``[["bundle", units], ...]``), parsed once per distinct text."""
    got = _PARSED.get(text)
    if got is None:
        if len(_PARSED) >= 10_000:
            _PARSED.clear()
        got = _PARSED[text] = [(b, int(u)) for b, u in json.loads(text)]
    return got


_PARSED: dict[str, list[tuple[str, int]]] = {}   # bundles_json -> its units (few distinct texts, many rows)


class Taken:
    """What the ledger rows a chunk replaces took, added up per subscriber cycle (given back in one step per key,
    not per row): bundle units and charges; ``keys`` holds every cycle a counted row names, ``replaced`` the
    (tenant, cdr_id) of every stored row."""

    __slots__ = ("replaced", "keys", "units", "charges")

    def __init__(self) -> None:
        self.replaced: set[tuple[str, str]] = set()
        self.keys: set[CounterKey] = set()
        self.units: dict[CounterKey, dict[str, int]] = {}
        self.charges: dict[CounterKey, dict[str, int]] = {}

    def add(self, tenant: str, rows: Iterable[tuple[str, str, str, str, int, str]]) -> None:
        """The rows UsageRepository.holdings_of gave for ``tenant``; a row without a cycle counts in no balance."""
        replaced, keys, units, charges = self.replaced, self.keys, self.units, self.charges
        for cdr_id, msisdn, cycle, currency, charge, bundles in rows:
            replaced.add((tenant, cdr_id))
            if not cycle:
                continue
            key = (tenant, msisdn, cycle)
            keys.add(key)
            if bundles and bundles != "[]":
                by = units.get(key)
                if by is None:
                    by = units[key] = {}
                for b, u in bundle_units(bundles):
                    by[b] = by.get(b, 0) + u
            if charge:
                byc = charges.get(key)
                if byc is None:
                    byc = charges[key] = {}
                byc[currency] = byc.get(currency, 0) + int(charge)


    def update(self, other: "Taken") -> None:
        """``other``'s rows added to these (what a chunk's messages took, each added up on its own)."""
        self.replaced |= other.replaced
        self.keys |= other.keys
        for mine, theirs in ((self.units, other.units), (self.charges, other.charges)):
            for key, by in theirs.items():
                have = mine.get(key)
                if have is None:
                    mine[key] = dict(by)
                    continue
                for name, amount in by.items():
                    have[name] = have.get(name, 0) + amount


class Held:
    """What the CDRs of a re-rating run still hold in the ledger, per subscriber cycle: bundle units and charges.

    A run gives back everything its CDRs held before rating any of them (so they share the units as if rated
    from scratch, in order), and each chunk's write keeps counters equal to the ledger: the CDRs not yet rated
    go on holding their old units until their chunk replaces them.  Computed from the ledger when the run
    starts, so a run started again after a crash starts from the same place.
    """

    def __init__(self, bundles: dict[CounterKey, dict[str, int]], charges: dict[CounterKey, dict[str, int]]) -> None:
        self.bundles = bundles
        self.charges = charges

    def besides(self, taken: Taken, keys: Iterable[CounterKey]) -> dict[CounterKey, tuple[dict[str, int], dict[str, int]]]:
        """Per key: what the run's CDRs other than the chunk's (``taken``: given back by the chunk itself) hold."""
        mine_units, mine_charges = taken.units, taken.charges
        held_units, held_charges = self.bundles, self.charges
        out: dict[CounterKey, tuple[dict[str, int], dict[str, int]]] = {}
        for k in set(keys).union(mine_units, mine_charges):
            units, charges = held_units.get(k), held_charges.get(k)
            if not units and not charges:
                continue
            mine = mine_units.get(k)
            units = ({b: left for b, u in units.items() if (left := u - mine.get(b, 0))} if mine
                     else {b: u for b, u in units.items() if u}) if units else {}
            mine = mine_charges.get(k)
            charges = ({c: left for c, m in charges.items() if (left := m - mine.get(c, 0))} if mine
                       else {c: m for c, m in charges.items() if m}) if charges else {}
            if units or charges:
                out[k] = (units, charges)
        return out

    def rated(self, taken: Taken, sign: int = 1) -> None:
        """The chunk's old rows were replaced: its CDRs hold nothing of the old rating any more (``sign`` -1: they
        were not after all, a chunk written ahead lost its race; engine.rating.desk.RatingStream)."""
        for k, units in taken.units.items():
            by = self.bundles.setdefault(k, {})
            for b, u in units.items():
                by[b] = by.get(b, 0) - sign * u
        for k, charges in taken.charges.items():
            byc = self.charges.setdefault(k, {})
            for c, m in charges.items():
                byc[c] = byc.get(c, 0) - sign * m


__all__ = ["CounterKey", "CounterRow", "Held", "LEDGER_FIELDS", "LedgerEntry", "RatedSubscriber", "Taken", "Usage", "UsageRepository",
           "cycle_of"]
