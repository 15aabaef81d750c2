"""Evaluators built from the plan IR: what the rater reads per CDR.

Everything here is precomputed once per plan set: rate models, band clocks,
a longest-prefix index per set of destination groups, a flat rate table per
plan version keyed by ``(service, direction, zone, destination, band)``,
bundles in consumption order and discount models.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from engine.money import RoundingMode
from engine.plans.ir import IR_FORMAT, check_format
from engine.rating.bandclock import BandClock
from engine.rating.discounts import DISCOUNTS, DiscountModel
from engine.rating.models import MODELS, ChargeModel, RoundingRule
from engine.rating.prefix import PrefixIndex

Predicate = Callable[[Mapping[str, Any]], bool]
NO_GROUP = ""


@dataclass(frozen=True, slots=True)
class CompiledRate:
    id: str
    unit: str
    currency: str
    model: ChargeModel
    connect_fee: int
    minimum_charge: int
    maximum_cost: int | None
    beyond: str
    rounding: RoundingRule
    max_charge_full: bool = False        # disconnect, charge: full
    waive_unanswered: bool = False       # connect_fee_unanswered: waive

    @property
    def flags_calls(self) -> bool:
        """Whether a call reaching the maximum is flagged (it should have been disconnected)."""
        return self.maximum_cost is not None and self.beyond == "disconnect"


@dataclass(frozen=True, slots=True)
class CompiledBundle:
    id: str
    service: str
    unit: str
    allowance: int
    destinations: frozenset[str]
    zones: frozenset[str]
    priority: int
    recurrence: str
    validity_days: int
    fee: int
    currency: str
    proration: str
    predicate: Predicate | None

    def applies(self, service: str, destination: str, zone: str, facts: Mapping[str, Any] | None) -> bool:
        if service != self.service:
            return False
        if self.destinations and destination not in self.destinations:
            return False
        if self.zones and zone not in self.zones and "any" not in self.zones:
            return False
        return self.predicate is None or bool(self.predicate(facts or {}))


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    plan_id: str
    version: int
    effective_from: int            # UTC epoch seconds: 00:00 local time of the effective date
    currency: str
    clock: BandClock
    index: PrefixIndex
    table: dict[tuple[str, str, str, str, str], CompiledRate]
    monthly_fee: int
    bundles: tuple[str, ...]
    discounts: tuple[DiscountModel, ...]
    # (service, direction, zone, group) the table prices in some band: where a longer prefix's group is not priced
    # for the traffic, the evaluator falls back to a shorter one that is
    priced: frozenset[tuple[str, str, str, str]] = frozenset()
    # rows with a band set of their own: (its clock, its resolved rows) per set, and the traffic they price
    own_bands: tuple[tuple[BandClock, dict[tuple[str, str, str, str, str], CompiledRate]], ...] = ()
    own_keys: frozenset[tuple[str, str, str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class CompiledPlan:
    id: str
    name: str
    tenant: str
    segment: str
    customer: str
    currency: str
    versions: tuple[CompiledVersion, ...]
    starts: tuple[int, ...]
    split: bool = False     # version_change: split (a call is cut where the next version starts)
    parent: str = ""        # extends: the plan that prices what this one has no rate for

    def version_at(self, epoch: int) -> CompiledVersion | None:
        i = bisect_right(self.starts, epoch) - 1
        return self.versions[i] if i >= 0 else None

    def next_start(self, epoch: int) -> int | None:
        """When the version after the one in force at ``epoch`` starts (None: no later version)."""
        i = bisect_right(self.starts, epoch)
        return self.starts[i] if i < len(self.starts) else None


class CompiledPlans:
    """A compiled plan set.  Build with :func:`engine.plans.compile_plan_set` or :meth:`from_ir`."""

    def __init__(self, ir: dict[str, Any]) -> None:
        check_format(ir)
        self._ir = ir
        self.rates: dict[str, CompiledRate] = {rid: _rate(rid, r) for rid, r in ir["rates"].items()}
        self.clocks: dict[str, BandClock] = {tid: BandClock(tid, t) for tid, t in ir["time_bands"].items()}
        self.zone_of_network: dict[str, str] = {}
        self.other_zone = ""
        for zid, z in ir["zones"].items():
            for net in z["visited_networks"]:
                self.zone_of_network[net] = zid
            if z["other_networks"]:
                self.other_zone = zid
        self.bundles: dict[str, CompiledBundle] = {bid: _bundle(bid, b) for bid, b in ir["bundles"].items()}
        # what evaluators learn of this plan set and share (engine.rating.evaluator: one-span charges per rate)
        self.memos: dict[str, Any] = {}
        self.discounts: dict[str, DiscountModel] = {
            did: DISCOUNTS[d["type"]](did, d, _predicate(d["condition"], did)) for did, d in ir["discount_plans"].items()
        }
        indexes: dict[tuple[str, ...], PrefixIndex] = {}
        self.plans: dict[str, CompiledPlan] = {}
        for pid, p in ir["tariff_plans"].items():
            versions = []
            for v in p["versions"]:
                groups = tuple(v["destinations"])
                if groups not in indexes:
                    indexes[groups] = prefix_index(ir["destinations"], groups)
                clock = self.clocks[v["time_bands"]]
                table = _table(v, self.rates)
                own = tuple((self.clocks[tb], {tuple(r[:5]): self.rates[r[5]] for r in rows})
                            for tb, rows in sorted(v.get("own_band_sets", {}).items()))
                own_keys = frozenset(k[:4] for _c, t in own for k in t)
                versions.append(CompiledVersion(
                    plan_id=pid,
                    version=v["version"],
                    effective_from=_local_midnight(v["effective_from"], clock.tz),
                    currency=p["currency"],
                    clock=clock,
                    index=indexes[groups],
                    table=table,
                    monthly_fee=v["monthly_fee"],
                    bundles=tuple(v["bundles"]),
                    discounts=tuple(self.discounts[d] for d in v["discounts"]),
                    priced=frozenset(k[:4] for k in table) | own_keys,
                    own_bands=own,
                    own_keys=own_keys,
                ))
            self.plans[pid] = CompiledPlan(pid, p["name"], p["tenant"], p["segment"], p["customer"], p["currency"],
                                           tuple(versions), tuple(x.effective_from for x in versions),
                                           p.get("version_change") == "split", p.get("extends", ""))

    @classmethod
    def from_ir(cls, ir: dict[str, Any]) -> "CompiledPlans":
        return cls(ir)

    def to_ir(self) -> dict[str, Any]:
        return copy.deepcopy(self._ir)

    def zone_for(self, visited_network: str) -> str:
        """``"home"``, a roaming zone id, or ``""`` when the network is in no zone."""
        if not visited_network:
            return "home"
        return self.zone_of_network.get(visited_network) or self.other_zone

    def plan(self, plan_id: str) -> CompiledPlan | None:
        return self.plans.get(plan_id)


def no_plans() -> CompiledPlans:
    """A plan set holding nothing: every plan named in it is unknown."""
    return CompiledPlans({"format": IR_FORMAT, "destinations": {}, "zones": {}, "time_bands": {}, "rates": {}, "bundles": {},
                          "discount_plans": {}, "tariff_plans": {}})


def prefix_index(destinations: dict[str, Any], groups: Any) -> PrefixIndex:
    """The longest-prefix index of some destination groups of the IR (a prefix in several groups: priority decides)."""
    return PrefixIndex(((prefix, g) for g in groups for prefix in destinations[g]["prefixes"]),
                       {g: destinations[g].get("priority", 0) for g in groups})


def _rounding(r: dict[str, Any]) -> RoundingRule:
    return RoundingRule(RoundingMode(r["mode"]), r["decimals"], r["scope"])


def _rate(rid: str, r: dict[str, Any]) -> CompiledRate:
    rounding = _rounding(r["rounding"])
    mc = r["maximum_cost"]
    maximum = None if mc is None else mc["amount"]
    return CompiledRate(rid, r["unit"], r["currency"], MODELS[r["model"]](rid, r, rounding), r["connect_fee"],
                        r["minimum_charge"], maximum, "" if mc is None else mc["beyond"], rounding,
                        mc is not None and mc.get("charge") == "full", r.get("connect_fee_unanswered") == "waive")


def _predicate(source: Any, what: str) -> Predicate | None:
    """Rebuild an applicability condition kept in the IR (canonical plain form) as a Python predicate."""
    if source is None:
        return None
    from engine.conditions import condition_from_plain

    return condition_from_plain(source, what).to_python()


def _bundle(bid: str, b: dict[str, Any]) -> CompiledBundle:
    return CompiledBundle(bid, b["service"], b["unit"], b["allowance"], frozenset(b["destinations"]), frozenset(b["zones"]),
                          b["priority"], b["recurrence"], b["validity_days"], b["fee"], b["currency"], b["proration"],
                          _predicate(b["condition"], bid))


def _table(v: dict[str, Any], rates: dict[str, CompiledRate]) -> dict[tuple[str, str, str, str, str], CompiledRate]:
    table: dict[tuple[str, str, str, str, str], CompiledRate] = {}
    for service, direction, zone, dest, band, rate in v["rate_table"]:
        table[(service, direction, zone, dest, band)] = rates[rate]
    # groups the index knows only for bundles/discounts price like "no group"
    with_rows = {k[3] for k in table}
    for group in v["destinations"]:
        if group not in with_rows:
            for (service, direction, zone, dest, band), rate in list(table.items()):
                if dest == NO_GROUP:
                    table[(service, direction, zone, group, band)] = rate
    return table


def _local_midnight(day: str, tz: ZoneInfo) -> int:
    d = datetime.combine(datetime.fromisoformat(day).date(), time(0), tzinfo=tz)
    return int(d.astimezone(timezone.utc).timestamp())
