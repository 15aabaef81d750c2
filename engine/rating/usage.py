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

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Protocol

from engine.rating.period import cycle_bounds

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


@dataclass(slots=True)
class CounterRow:
    allowance: int
    remaining: int
    unit: str


class UsageRepository(Protocol):
    """Bulk reads and the one conditional write per chunk (store/plans.py implements it)."""

    def ledger_of(self, tenant_id: str, cdr_ids: Iterable[str]) -> dict[str, LedgerEntry]: ...
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

    def __init__(self, repo: Any, keys: Iterable[CounterKey]) -> None:
        wanted = sorted(set(keys))
        self.counters: dict[CounterKey, dict[str, CounterRow]] = repo.counters_of(wanted) if wanted else {}
        self.balances: dict[CounterKey, dict[str, int]] = repo.balances_of(wanted) if wanted else {}
        self._read_counters = {(k, b): row.remaining for k, by in self.counters.items() for b, row in by.items()}
        self._read_balances = {(k, c): v for k, by in self.balances.items() for c, v in by.items()}
        self._wallets: dict[CounterKey, dict[str, int]] = {}

    def ensure(self, key: CounterKey, bundle_id: str, allowance: int, unit: str) -> None:
        by = self.counters.setdefault(key, {})
        if bundle_id not in by:
            by[bundle_id] = CounterRow(allowance, allowance, unit)
            self._wallets.pop(key, None)

    def wallet(self, key: CounterKey) -> dict[str, int]:
        """Remaining units per bundle of a subscriber's cycle, as the evaluator consumes them (in place)."""
        w = self._wallets.get(key)
        if w is None:
            w = self._wallets[key] = {b: row.remaining for b, row in self.counters.get(key, {}).items()}
        return w

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

    def charged(self, key: CounterKey, currency: str) -> int:
        return self.balances.get(key, {}).get(currency, 0)

    def add_charge(self, key: CounterKey, currency: str, micros: int) -> None:
        if micros:
            by = self.balances.setdefault(key, {})
            by[currency] = by.get(currency, 0) + micros

    def changes(self) -> tuple[list[tuple[CounterKey, str, CounterRow, int | None]], list[tuple[CounterKey, str, int, int | None]]]:
        """What to write: (key, bundle, new row, remaining read or None) and (key, currency, new charged, read or None)."""
        counters = []
        for key, w in self._wallets.items():
            for bid, remaining in w.items():
                row = self.counters[key][bid]
                read = self._read_counters.get((key, bid))
                if read is None or read != remaining:
                    counters.append((key, bid, CounterRow(row.allowance, remaining, row.unit), read))
        balances = []
        for key, by in self.balances.items():
            for currency, value in by.items():
                read = self._read_balances.get((key, currency))
                if read is None or read != value:
                    balances.append((key, currency, value, read))
        return counters, balances


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

    def besides(self, entries: Iterable[LedgerEntry], keys: Iterable[CounterKey]) -> dict[CounterKey, tuple[dict[str, int], dict[str, int]]]:
        """Per key: what the run's CDRs other than ``entries`` hold (those are given back by the chunk itself)."""
        mine_units: dict[CounterKey, dict[str, int]] = {}
        mine_charges: dict[CounterKey, dict[str, int]] = {}
        for e in entries:
            if e.counted:
                k = (e.tenant_id, e.msisdn, e.cycle)
                for b, u in e.bundles:
                    mine_units.setdefault(k, {})[b] = mine_units.get(k, {}).get(b, 0) + u
                if e.charge_micros:
                    mine_charges.setdefault(k, {})[e.currency] = mine_charges.get(k, {}).get(e.currency, 0) + e.charge_micros
        out: dict[CounterKey, tuple[dict[str, int], dict[str, int]]] = {}
        for k in set(keys) | set(mine_units) | set(mine_charges):
            units = {b: u - mine_units.get(k, {}).get(b, 0) for b, u in self.bundles.get(k, {}).items()}
            charges = {c: m - mine_charges.get(k, {}).get(c, 0) for c, m in self.charges.get(k, {}).items()}
            units = {b: u for b, u in units.items() if u}
            charges = {c: m for c, m in charges.items() if m}
            if units or charges:
                out[k] = (units, charges)
        return out

    def rated(self, entries: Iterable[LedgerEntry]) -> None:
        """These CDRs' old rows were replaced: they hold nothing of the old rating any more."""
        for e in entries:
            if not e.counted:
                continue
            k = (e.tenant_id, e.msisdn, e.cycle)
            for b, u in e.bundles:
                by = self.bundles.setdefault(k, {})
                by[b] = by.get(b, 0) - u
            if e.charge_micros:
                byc = self.charges.setdefault(k, {})
                byc[e.currency] = byc.get(e.currency, 0) - e.charge_micros


__all__ = ["CounterKey", "CounterRow", "Held", "LEDGER_FIELDS", "LedgerEntry", "RatedSubscriber", "Usage", "UsageRepository",
           "cycle_of"]
