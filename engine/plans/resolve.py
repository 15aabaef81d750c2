"""Which rate-table row prices a given kind of traffic (most specific row wins).

A concrete traffic key is ``(service, direction, zone, destination, band)``
where ``destination`` is a destination group id or :data:`NO_GROUP` (the
number matched none of the plan's groups) and ``zone`` is ``"home"`` or a
roaming zone id.  A row matches when each of its fields equals the key's or is
``any``; among matching rows the one with the most specific fields wins, with
zone > destination > band > direction: where the subscriber is decides first
(a call made while roaming outside Europe costs the roaming price whatever it
dials), then what was dialled, then when.  Two rows with the same pattern and
values are duplicates (ambiguous), reported by the validator.

A version's rows are its inline ``rates`` plus the rows of its ``rate_table``;
an inline row replaces a table row for exactly the same traffic.
"""

from __future__ import annotations

from itertools import product
from typing import Iterable

from engine.cdr import Direction
from engine.plans.model import ANY, PlanSet, PlanVersion, RateBinding

NO_GROUP = ""  # the destination key for a number in none of the plan's groups
HOME = "home"

Key = tuple[str, str, str, str, str]


def zone_key(zone: str, plan_set: PlanSet) -> str:
    """A binding's zone, normalised: the home zone's id means ``home``."""
    z = plan_set.zones.get(zone)
    return HOME if (z is not None and z.home) else zone


def binding_key(b: RateBinding, plan_set: PlanSet) -> Key:
    zone = b.zone if b.zone == ANY else zone_key(b.zone, plan_set)
    return (b.service, b.direction, zone, b.destination, b.band)


def own_band_sets(version: PlanVersion, plan_set: PlanSet) -> list[str]:
    """The band sets a version's rows name for themselves (sorted)."""
    return sorted({b.time_bands for b in effective_bindings(version, plan_set) if b.time_bands})


def specificity(key: Key) -> int:
    _svc, direction, zone, dest, band = key
    return (zone != ANY) * 8 + (dest != ANY) * 4 + (band != ANY) * 2 + (direction != ANY) * 1


def effective_bindings(version: PlanVersion, plan_set: PlanSet) -> list[RateBinding]:
    """Inline rows, then the rate table's rows whose traffic no inline row already prices."""
    rows = list(version.bindings)
    table = plan_set.rate_tables.get(version.rate_table) if version.rate_table else None
    if table is not None:
        inline = {(binding_key(b, plan_set), b.time_bands) for b in rows}
        rows.extend(b for b in table.bindings if (binding_key(b, plan_set), b.time_bands) not in inline)
    return rows


def concrete_keys(version: PlanVersion, plan_set: PlanSet, own: str = "") -> Iterable[Key]:
    bindings = [b for b in effective_bindings(version, plan_set) if b.time_bands == own]
    services = sorted({b.service for b in bindings})
    directions = [d.value for d in Direction]
    zones = [HOME] + sorted(z.id for z in plan_set.zones.values() if not z.home)
    dests = [NO_GROUP] + sorted({b.destination for b in bindings if b.destination != ANY})
    band_set = plan_set.time_bands.get(own or version.time_bands)
    bands = sorted(b.id for b in band_set.bands) if band_set else []
    return product(services, directions, zones, dests, bands)


def resolve_table(version: PlanVersion, plan_set: PlanSet, own: str = "") -> dict[Key, RateBinding]:
    """Every concrete key with a matching row -> the winning row (first row wins a duplicate).  ``own``: the rows that
    name that band set of their own (keyed by its bands), instead of the version's rows."""
    by_key: dict[Key, RateBinding] = {}
    for b in effective_bindings(version, plan_set):
        if b.time_bands == own:
            by_key.setdefault(binding_key(b, plan_set), b)
    patterns = sorted({tuple(v == ANY for v in k) for k in by_key}, key=lambda p: -specificity(
        tuple(ANY if wild else "x" for wild in p)))  # type: ignore[arg-type]
    table: dict[Key, RateBinding] = {}
    for key in concrete_keys(version, plan_set, own):
        for pattern in patterns:
            probe = tuple(ANY if wild else v for v, wild in zip(key, pattern))
            hit = by_key.get(probe)  # type: ignore[arg-type]
            if hit is not None:
                table[key] = hit
                break
    return table
