"""Plan set -> intermediate form (IR) -> fast evaluators.

The IR is plain JSON data (ints, strings, lists, dicts; money in micros, no
floats), stable for a given plan set (sorted keys, sorted lists), so it can be
stored, diffed and kept as a golden artifact.  Rate tables are stored
*resolved*: one row per concrete traffic key with the winning rate, so the
IR says exactly what will be charged, without re-deriving precedence.

:func:`compile_plan_set` builds the IR and hands it to
:class:`engine.rating.compiled.CompiledPlans`, which only ever reads the IR —
an evaluator built from a stored IR behaves exactly like a fresh compile.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.money import MICROS, minor_units
from engine.plans import weekgrid
from engine.plans.ir import IR_FORMAT, day_name
from engine.plans.model import Applicability, Bundle, DestinationGroup, DiscountPlan, MaxCostCharge, Unanswered, VersionChange, PlanSet, PlanVersion, Rate, Rounding, TimeBandSet
from engine.plans.resolve import own_band_sets, resolve_table, zone_key
from engine.plans.validate import version_groups


def build_ir(ps: PlanSet) -> dict[str, Any]:
    ir: dict[str, Any] = {
        "format": IR_FORMAT,
        "destinations": {g.id: _destination(g) for g in ps.destinations.values()},
        "zones": {
            z.id: {"name": z.name, "home": z.home, "other_networks": z.other_networks, "visited_networks": sorted(z.visited_networks)}
            for z in ps.zones.values()
        },
        "time_bands": {tb.id: _time_bands(tb, ps) for tb in ps.time_bands.values()},
        "rates": {r.id: _rate(r) for r in ps.rates.values()},
        "bundles": {b.id: _bundle(b, ps) for b in ps.bundles.values()},
        "discount_plans": {d.id: _discount(d) for d in ps.discount_plans.values()},
        "tariff_plans": {
            p.id: {
                "name": p.name,
                "tenant": p.tenant,
                "segment": p.segment.value,
                "customer": p.customer,
                "currency": p.currency,
                "versions": [_version(v, ps) for v in p.versions],
                **({"version_change": p.version_change.value} if p.version_change is not VersionChange.START else {}),
                **({"extends": p.extends} if p.extends else {}),
            }
            for p in ps.tariff_plans.values()
        },
    }
    return _sorted(ir)


def ir_digest(ir: dict[str, Any]) -> str:
    """A content hash of the IR: two plan sets that rate identically share it."""
    return hashlib.sha256(dump_ir(ir).encode("utf-8")).hexdigest()


def dump_ir(ir: dict[str, Any]) -> str:
    """Stable text form: sorted keys, one line per leaf list (a rate-table row, a band segment), diff-friendly."""
    return _dump(ir, 0) + "\n"


def _dump(value: Any, depth: int) -> str:
    pad = " " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dump(value[k], depth + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) and v for v in value):
        return "[\n" + ",\n".join(pad + _dump(v, depth + 1) for v in value) + "\n" + " " * depth + "]"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)



def compile_plan_set(ps: PlanSet) -> Any:
    """Compile a *validated* plan set (from :func:`engine.plans.load_plan_set`) into evaluators."""
    from engine.rating.compiled import CompiledPlans

    return CompiledPlans.from_ir(build_ir(ps))


_ATOMS = (str, int, float, bool, type(None))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        # (a list of plain values, such as a group's prefixes, copied without a call per item)
        return [v if isinstance(v, _ATOMS) else _sorted(v) for v in value]
    return value


def _destination(g: DestinationGroup) -> dict[str, Any]:
    out: dict[str, Any] = {"name": g.name, "prefixes": sorted(g.prefixes)}
    if g.priority:
        out["priority"] = g.priority   # only when set: plan sets without it keep their IR (and digest)
    return out


def _rounding(r: Rounding, currency: str) -> dict[str, Any]:
    # a rate or discount without explicit decimals rounds to its currency's minor units (JPY 0, EUR 2, KWD 3)
    decimals = r.decimals if r.decimals is not None else minor_units(currency)
    return {"mode": r.mode.value, "decimals": decimals, "scope": r.scope.value}


def _applicability(a: Applicability | None) -> Any:
    return None if a is None else a.source


def _time_bands(tb: TimeBandSet, ps: PlanSet) -> dict[str, Any]:
    dates: set[str] = set()
    recurring: set[str] = set()
    for cid in tb.holiday_calendars:
        cal = ps.calendars.get(cid)
        if cal is not None:
            dates.update(d.isoformat() for d in cal.dates)
            recurring.update(f"{m:02d}-{d:02d}" for m, d in cal.recurring)
    segments: dict[str, list[weekgrid.Segment]] = {}
    for day, holiday in weekgrid.DAY_KINDS:
        if holiday and not tb.holiday_calendars:
            continue
        segments[day_name(day, holiday)] = weekgrid.day_segments(tb, day, holiday)
    # minutes of day, as ever, unless a band changes on a second that is not a whole minute (then seconds, said)
    unit = 60 if all(s.start % 60 == 0 and s.end % 60 == 0 for segs in segments.values() for s in segs) else 1
    days = {name: [[s.start // unit, s.end // unit, s.winner or ""] for s in segs] for name, segs in segments.items()}
    extra: dict[str, Any] = {} if unit == 60 else {"resolution": "second"}
    return {
        **extra,
        "name": tb.name,
        "timezone": tb.timezone,
        "holidays": {"dates": sorted(dates), "recurring": sorted(recurring)},
        "bands": sorted(b.id for b in tb.bands),
        "days": days,
    }


def _rate(r: Rate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": r.name,
        "unit": r.unit.value,
        "currency": r.currency,
        "model": r.model,
        "connect_fee": r.connect_fee_micros,
        "minimum_charge": r.minimum_charge_micros,
        "maximum_cost": None if r.maximum_cost is None else {
            "amount": r.maximum_cost.amount_micros, "beyond": r.maximum_cost.strategy.value,
            **({"charge": r.maximum_cost.charge.value} if r.maximum_cost.charge is not MaxCostCharge.CAPPED else {})},
        "rounding": _rounding(r.rounding, r.currency),
    }
    # declared policies appear only when not the default, so plan sets without them keep their IR (and digest)
    if r.connect_fee_unanswered is not Unanswered.CHARGE:
        out["connect_fee_unanswered"] = r.connect_fee_unanswered.value
    if r.tiers:
        out["tiers"] = {
            "mode": r.tier_mode.value if r.tier_mode else "graduated",
            "per": r.tier_per,
            "increment": r.tier_increment,
            "levels": [[t.up_to, t.price_micros, t.flat_micros] for t in r.tiers],
        }
    else:
        out["steps"] = [[s.from_unit, s.price_micros, s.per, s.increment] for s in r.steps]
    return out


def _bundle(b: Bundle, ps: PlanSet) -> dict[str, Any]:
    return {
        "name": b.name,
        "service": b.service,
        "unit": b.unit.value,
        "allowance": b.allowance,
        "destinations": sorted(b.destinations),
        # the home zone's id means "home", as in rate rows
        "zones": sorted({zone_key(z, ps) for z in b.zones}),
        "recurrence": b.recurrence.value,
        "validity_days": b.validity_days,
        "fee": b.fee_micros,
        "currency": b.currency,
        "proration": b.proration.value,
        "priority": b.priority,
        "condition": _applicability(b.condition),
    }


def _discount(d: DiscountPlan) -> dict[str, Any]:
    return {
        "name": d.name,
        "type": d.kind.value,
        "level": d.level.value,
        "currency": d.currency,
        "services": sorted(d.services),
        "destinations": sorted(d.destinations),
        "condition": _applicability(d.condition),
        # a percentage in micro-percent: 12.5 % -> 12_500_000 (exact, integer)
        "percent": d.percent.numerator * 100 * MICROS // d.percent.denominator,
        "amount": d.amount_micros,
        "tiers": None if not d.tiers else {
            "mode": d.tier_mode.value if d.tier_mode else "graduated",
            "levels": [[t.up_to_micros, t.percent.numerator * 100 * MICROS // t.percent.denominator] for t in d.tiers],
        },
        "rounding": _rounding(d.rounding, d.currency),
    }


def _version(v: PlanVersion, ps: PlanSet) -> dict[str, Any]:
    table = resolve_table(v, ps)
    # rows with a band set of their own: resolved per set, by its bands; only when present (the IR is otherwise unchanged)
    own = {tb: sorted([*key, b.rate] for key, b in resolve_table(v, ps, tb).items()) for tb in own_band_sets(v, ps)}
    return {
        **({"own_band_sets": own} if own else {}),
        **({"add_ons": list(v.add_ons)} if v.add_ons else {}),   # only when listed: other versions' IR is unchanged
        "version": v.version,
        "effective_from": v.effective_from.isoformat(),
        "time_bands": v.time_bands,
        "monthly_fee": v.monthly_fee_micros,
        "bundles": list(v.bundles),
        "discounts": list(v.discounts),
        "destinations": version_groups(ps, v),
        "rate_table": sorted([*key, b.rate] for key, b in table.items()),
    }
