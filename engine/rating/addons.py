"""Add-on bundles in rating with counters: the units of one-off bundles a subscriber bought (engine.billing.addons).

An add-on purchase grants its bundle's allowance from the purchase instant to the end of its ``validity_days``-th
local day (the tariff plan's time zone; the purchase day is the first).  Its units are a bundle counter like a
monthly bundle's, in the same ``bundle_counters`` rows and under the same compare-and-set write, keyed by the
subscriber and the purchase's **counter cycle** ``+NNNNNN`` (the subscriber's n-th purchase) instead of a month, so
two replicas never spend the same add-on units twice.

While a chunk is rated, each CDR's wallet (the subscriber cycle's remaining units per bundle) also holds the add-ons
valid at the CDR's start time, under the bundle's id: the one evaluator consumes them like any bundle, by
``priority`` (the plan validator keeps an add-on after the plan's own bundles for the same traffic).  The same add-on
bought twice and valid at once is one wallet entry: its units are taken from the purchase that expires first.  What a
CDR took of a purchase is written to its ledger row as ``BN_...+NNNNNN`` (bundle and counter cycle), so rating it
again gives the units back to that purchase (:func:`split_use`).

A monthly add-on comes from the store as one grant over its whole span (``sequence`` set, no counter cycle yet) and is
cut into bill cycles by the rows that use it (:func:`in_row_cycles`): each row's counter key already names its bill
cycle, from the anchor day of the subscriber's billing account as rating reads it with the chunk (the plan bundles'
cycle, ``RatingDesk._keys``), so an account whose anchor day changes after the purchase moves the add-on's cycles
exactly as it moves the plan's bundles: from the next CDR rated on, counters already kept are not moved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Protocol, Sequence

from engine.rating.usage import ADD_ON_MARK, CounterKey, Usage


def counter_cycle(sequence: int) -> str:
    """The counter cycle of a subscriber's ``sequence``-th add-on purchase (fits the counters' 7-character cycle)."""
    if not 1 <= sequence <= 999_999:
        raise ValueError("an add-on purchase number is 1..999999")
    return f"{ADD_ON_MARK}{sequence:06d}"


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CYCLE_SPAN = 1200   # months a monthly add-on's cycles are told apart in (100 years)


def monthly_counter_cycle(sequence: int, bill_cycle: str) -> str:
    """The counter cycle of a monthly add-on purchase (the subscriber's ``sequence``-th purchase) in one bill cycle
    (``2026-04``, the month the cycle starts in): ``+`` then a letter and five base-36 characters, so it fits the
    counters' 7-character cycle and never meets a one-off purchase's ``+NNNNNN``; its allowance is counted afresh in
    each bill cycle, as a plan bundle's is."""
    if not 1 <= sequence <= 999_999:
        raise ValueError("an add-on purchase number is 1..999999")
    year, month = int(bill_cycle[:4]), int(bill_cycle[5:7])
    value = sequence * _CYCLE_SPAN + (year * 12 + month - 1) % _CYCLE_SPAN
    head, rest = divmod(value, 36 ** 5)
    tail = ""
    for _ in range(5):
        rest, digit = divmod(rest, 36)
        tail = _B36[digit] + tail
    return f"{ADD_ON_MARK}{chr(ord('a') + head)}{tail}"


def use_name(bundle_id: str, cycle: str) -> str:
    """How a ledger row names the units it took of one add-on purchase."""
    return bundle_id + cycle


def split_use(name: str) -> tuple[str, str] | None:
    """(bundle, counter cycle) of a ledger use of an add-on; None for a monthly bundle's use."""
    cut = name.find(ADD_ON_MARK)
    return (name[:cut], name[cut:]) if cut > 0 else None


@dataclass(frozen=True, slots=True)
class ActiveAddOn:
    """One purchase as rating needs it (the billing area keeps the whole record)."""

    tenant_id: str
    msisdn: str
    cycle: str                 # its counter cycle, "+000001"
    bundle_id: str
    allowance: int
    unit: str
    valid_from: datetime       # the purchase instant (UTC)
    valid_until: datetime      # exclusive: local midnight after the last valid day
    sequence: int = 0          # a monthly add-on: the subscriber's purchase number (its counters: monthly_counter_cycle)
    bill_cycle: str = ""       # a monthly add-on's grant in one bill cycle: that cycle ("" while it is the whole span)

    @property
    def spans_cycles(self) -> bool:
        """A monthly add-on's whole span, not yet cut into the bill cycles of the rows that use it."""
        return bool(self.sequence) and not self.bill_cycle

    @property
    def key(self) -> CounterKey:
        return (self.tenant_id, self.msisdn, self.cycle)


class AddOnReader(Protocol):
    """The purchases of these subscribers valid at some time in ``[start, end]`` (store/addons.py)."""

    def active_add_ons(self, numbers: Iterable[tuple[str, str]], start: datetime, end: datetime) -> list[ActiveAddOn]: ...


def in_row_cycles(add_ons: Sequence[ActiveAddOn], keys: Sequence[CounterKey | None],
                  ats: Sequence[datetime | None]) -> list[ActiveAddOn]:
    """The grants the rows need: a monthly add-on's whole span becomes one grant per bill cycle of the rows of its
    number that start in it, keyed by that cycle (the row's counter key names it: the account's anchor as rating reads
    it); other grants as they are."""
    spans: dict[tuple[str, str], list[ActiveAddOn]] = {}
    out: list[ActiveAddOn] = []
    for a in add_ons:
        if a.spans_cycles:
            spans.setdefault((a.tenant_id, a.msisdn), []).append(a)
        else:
            out.append(a)
    if not spans:
        return out
    made: set[tuple[int, str]] = set()
    for key, at in zip(keys, ats):
        if key is None or at is None:
            continue
        for a in spans.get((key[0], key[1]), ()):
            if a.valid_from <= at < a.valid_until and (id(a), key[2]) not in made:
                made.add((id(a), key[2]))
                out.append(replace(a, cycle=monthly_counter_cycle(a.sequence, key[2]), bill_cycle=key[2]))
    return out


def keys_in_uses(key: CounterKey, names: Iterable[str]) -> set[CounterKey]:
    """The add-on counters a ledger row's uses (or what a re-rating run holds under ``key``) name."""
    out = set()
    for name in names:
        found = split_use(name)
        if found is not None:
            out.add((key[0], key[1], found[1]))
    return out


class AddOnWallets:
    """Wallets of a chunk's rows with the add-ons valid at each row's start, and what each row took of each purchase.

    A row's wallet is its subscriber cycle's (``Usage.wallet``); before the evaluator reads it for a row, the units
    the previous row of that wallet took of its add-on entries are booked to the purchases (earliest expiry first) and
    the entries are set to the add-ons valid at this row's time.  :meth:`finish` books the last rows and takes the
    entries out, so the cycle's wallet holds only its own counters when the chunk is written."""

    def __init__(self, usage: Usage, add_ons: Sequence[ActiveAddOn], keys: Sequence[CounterKey | None],
                 ats: Sequence[datetime | None]) -> None:
        self.usage = usage
        self.keys = keys
        self.ats = ats
        add_ons = in_row_cycles(add_ons, keys, ats)
        self.by_number: dict[tuple[str, str], list[ActiveAddOn]] = {}
        for a in sorted(add_ons, key=lambda a: (a.valid_until, a.cycle)):   # earliest expiry first
            usage.ensure(a.key, a.bundle_id, a.allowance, a.unit)
            self.by_number.setdefault((a.tenant_id, a.msisdn), []).append(a)
        # per subscriber cycle: the purchases loaded into its wallet and each entry's value when last booked
        self._loaded: dict[CounterKey, tuple[tuple[ActiveAddOn, ...], dict[str, int]]] = {}
        self._last_row: dict[CounterKey, int] = {}
        self.taken: dict[int, list[tuple[str, int]]] = {}   # row -> [(use name, units)]

    def rows_from(self, offset: int) -> Callable[[int, Any], dict[str, int] | None]:
        """The evaluator's ``wallets`` callable for the rows from ``offset`` on (it passes the index in its slice)."""
        def wallet_of(i: int, row: Any) -> dict[str, int] | None:
            return self._wallet(offset + i)

        return wallet_of

    def _wallet(self, j: int) -> dict[str, int] | None:
        key = self.keys[j]
        if key is None:
            return None
        base = self.usage.wallet(key)
        self._book(key, base)
        mine = self.by_number.get((key[0], key[1]))
        at = self.ats[j]
        # a monthly add-on's grant of another bill cycle than the row's is not this row's (its cycle is the row's key's)
        active = (tuple(a for a in mine if a.valid_from <= at < a.valid_until and (not a.bill_cycle or a.bill_cycle == key[2]))
                  if mine and at is not None else ())
        loaded = self._loaded.get(key)
        if (loaded[0] if loaded is not None else ()) != active:
            self._unload(key, base)
            values: dict[str, int] = {}
            for a in active:
                if a.bundle_id in base and a.bundle_id not in values:
                    continue   # a counter of the cycle under the same id (the validator refuses such plans): it wins
                values[a.bundle_id] = values.get(a.bundle_id, 0) + self.usage.wallet(a.key).get(a.bundle_id, 0)
            base.update(values)
            self._loaded[key] = (active, dict(values))
        self._last_row[key] = j
        return base

    def _book(self, key: CounterKey, base: dict[str, int]) -> None:
        """Book what the last row of this wallet took of its add-on entries to their purchases, earliest expiry first."""
        loaded = self._loaded.get(key)
        row = self._last_row.get(key)
        if loaded is None or row is None:
            return
        active, values = loaded
        for bid, before in values.items():
            used = before - base.get(bid, 0)
            if not used:
                continue
            values[bid] = before - used
            for a in active:
                if a.bundle_id != bid or used <= 0:
                    continue
                w = self.usage.wallet(a.key)
                take = min(used, w.get(bid, 0))
                if take:
                    w[bid] -= take
                    used -= take
                    self.taken.setdefault(row, []).append((use_name(bid, a.cycle), take))

    def _unload(self, key: CounterKey, base: dict[str, int]) -> None:
        loaded = self._loaded.pop(key, None)
        if loaded is not None:
            for bid in loaded[1]:
                base.pop(bid, None)

    def finish(self) -> None:
        """Book every wallet's last row and take the add-on entries out of the cycles' wallets."""
        for key in list(self._loaded):
            base = self.usage.wallet(key)
            self._book(key, base)
            self._unload(key, base)
        self._last_row.clear()

    def uses_of(self, j: int, uses: Any) -> Any:
        """Row ``j``'s bundle uses as its ledger row keeps them: add-on units named by purchase."""
        taken = self.taken.get(j)
        if not taken:
            return uses
        by_bundle: dict[str, int] = {}
        for name, units in taken:
            found = split_use(name)
            if found is not None:
                by_bundle[found[0]] = by_bundle.get(found[0], 0) + units
        out = []
        for bid, units in uses or ():
            units -= by_bundle.pop(bid, 0)
            if units:
                out.append((bid, units))
        return tuple(out) + tuple(taken)


__all__ = ["ADD_ON_MARK", "ActiveAddOn", "AddOnReader", "AddOnWallets", "counter_cycle", "in_row_cycles", "keys_in_uses", "monthly_counter_cycle", "split_use", "use_name"]
