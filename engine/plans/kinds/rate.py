"""``kind: rate`` — how a quantity of usage is priced (RT_...).

Stepped pricing, the common case::

    price: "0.10"          # per `per` units
    per: 60
    increments: 60/1       # first block / following blocks

or explicit steps when the first minute costs differently::

    steps:
      - {from: 0,  price: "0.20", per: 60, increment: 60}
      - {from: 60, price: "0.10", per: 60, increment: 1}

Tiered pricing (units of one event)::

    tiers: {mode: graduated, per: 1, increment: 1,
            levels: [{up_to: 10000, price: "1.40"}, {price: "1.32"}]}

Plus ``connect_fee`` (``connect_fee_unanswered: charge|waive`` for zero-unit calls, default charge),
``minimum_charge``, ``maximum_cost: {amount, beyond: free_beyond|cap|disconnect|cut, charge: capped|full}``
(default free_beyond; ``charge: full`` only with disconnect, which flags the CDR)
and ``rounding: {mode, decimals, scope: per_call|per_span|per_increment}``; without ``decimals``
a charge rounds to the currency's minor units (EUR 2, JPY 0, KWD 3).
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.money import MAX_DECIMALS, RoundingMode
from engine.plans.kinds.common import MICROS_REASON, Ctx, parse_units
from engine.plans.model import (MaxCost, MaxCostCharge, MaxCostStrategy, Rate, Rounding, RoundingScope, Step, Tier, TierMode, Unanswered,
                                Unit)
from engine.yamlio import Fields, MarkedList, MarkedMap

_INCREMENTS = re.compile(r"^\s*(\w+)\s*/\s*(\w+)\s*$")


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> Rate:
    f = Fields(node, "rate", ctx.problems)
    f.optional("kind", str)
    rid = ctx.ident(f, "rate")
    name = f.optional("name", str, default=rid)
    f.optional("description", str)
    unit = ctx.enum(f, "unit", Unit, default=Unit.SECOND) or Unit.SECOND
    currency = ctx.currency(f)
    steps: list[Step] = []
    tiers: list[Tier] = []
    tier_mode: TierMode | None = None
    tier_per, tier_inc = 1, 1
    has_price = "price" in node
    has_steps = "steps" in node
    has_tiers = "tiers" in node
    if has_price + has_steps + has_tiers != 1:
        ctx.problem(node.mark, "rates.pricing", f"{rid}: give exactly one of price (with per/increments), steps or tiers")
    if has_price:
        price = ctx.amount(f, "price", required=True)
        per = ctx.units(f, "per", required=True)
        first, following = _increments(f, ctx, rid)
        steps.append(Step(0, price, per, first))
        if following != first:
            steps.append(Step(first, price, per, following))
    else:
        for key in ("per", "increments"):
            if key in node:
                f.optional(key, (int, str))
                ctx.problem(node.key_mark(key), "rates.pricing", f"{rid}: {key} goes with price, not with steps or tiers")
    if has_steps:
        steps = _steps(f, ctx, rid)
    if has_tiers:
        tier_mode, tiers, tier_per, tier_inc = _tiers(f, ctx, rid)
    connect = ctx.amount(f, "connect_fee")
    minimum = ctx.amount(f, "minimum_charge")
    max_cost = _max_cost(f, ctx, rid)
    unanswered = ctx.enum(f, "connect_fee_unanswered", Unanswered, default=Unanswered.CHARGE) or Unanswered.CHARGE
    rounding = parse_rounding(f, ctx, "rounding")
    f.done()
    if max_cost and minimum and max_cost.amount_micros < minimum:
        ctx.problem(node.mark_of("maximum_cost"), "rates.max-below-min", f"{rid}: maximum_cost is below minimum_charge")
    return Rate(rid, name, unit, currency, tuple(steps), tuple(tiers), tier_mode, tier_per, tier_inc,
                connect, minimum, max_cost, rounding, node.mark, unanswered)


def _increments(f: Fields, ctx: Ctx, rid: str) -> tuple[int, int]:
    raw = f.optional("increments", (int, str, dict), default=1)
    mark = f.node.mark_of("increments")
    if isinstance(raw, dict):
        inc = Fields(raw, "increments", ctx.problems)
        first = ctx.units(inc, "first", required=True)
        following = ctx.units(inc, "next", default=first)
        inc.done()
        return first or 1, following or 1
    if isinstance(raw, int):
        if raw < 1:
            ctx.problem(mark, "value.range", f"{rid}: increments must be at least 1")
            return 1, 1
        return raw, raw
    m = _INCREMENTS.match(raw)
    first_units: int | None = parse_units(m.group(1)) if m else parse_units(raw)
    following_units: int | None = parse_units(m.group(2)) if m else first_units
    if not first_units or not following_units:
        ctx.problem(mark, "value.units", f"{rid}: increments {raw!r} should look like 60/1 (first block / following blocks)")
        return 1, 1
    return first_units, following_units


def _steps(f: Fields, ctx: Ctx, rid: str) -> list[Step]:
    raw = f.required("steps", list) or []
    steps: list[Step] = []
    for i, item in enumerate(raw):
        sf = Fields(item, f"{rid}.steps[{i}]", ctx.problems, fallback=raw.mark_of(i) if isinstance(raw, MarkedList) else f.mark)
        if not sf.ok:
            continue
        start = ctx.units(sf, "from", required=True, minimum=0)
        price = ctx.amount(sf, "price", required=True)
        per = ctx.units(sf, "per", required=True)
        inc = ctx.units(sf, "increment", default=1)
        sf.done()
        if steps and start <= steps[-1].from_unit:
            ctx.problem(sf.mark, "rates.steps-order", f"{rid}: steps must start at increasing 'from' values")
            continue
        if not steps and start != 0:
            ctx.problem(sf.mark, "rates.steps-order", f"{rid}: the first step must start at from: 0")
        steps.append(Step(start, price, per, inc))
    if not steps:
        ctx.problem(f.mark, "rates.pricing", f"{rid}: steps is empty")
    return steps


def _tiers(f: Fields, ctx: Ctx, rid: str) -> tuple[TierMode | None, list[Tier], int, int]:
    raw_tiers = f.required("tiers", dict)
    if raw_tiers is None:
        return None, [], 1, 1
    tf = Fields(raw_tiers, f"{rid}.tiers", ctx.problems, fallback=f.mark)
    mode = ctx.enum(tf, "mode", TierMode, required=True)
    per = ctx.units(tf, "per", default=1)
    inc = ctx.units(tf, "increment", default=1)
    raw = tf.required("levels", list) or []
    tf.done()
    tiers: list[Tier] = []
    prev: int | None = 0
    for i, item in enumerate(raw):
        lf = Fields(item, f"{rid}.tiers.levels[{i}]", ctx.problems, fallback=raw.mark_of(i) if isinstance(raw, MarkedList) else tf.mark)
        if not lf.ok:
            continue
        up_to = ctx.units(lf, "up_to", minimum=1) if "up_to" in lf.node else None
        price = ctx.amount(lf, "price", required=True)
        flat = ctx.amount(lf, "flat")
        lf.done()
        if prev is None:
            ctx.problem(lf.mark, "rates.unreachable-tier", f"{rid}: tier {i + 1} follows an unbounded tier and is never reached")
            continue
        if up_to is not None and up_to <= prev:
            ctx.problem(lf.mark, "rates.tiers-order", f"{rid}: tier limits must increase (up_to {up_to} after {prev})")
            continue
        tiers.append(Tier(up_to, price, flat))
        prev = up_to
    if tiers and tiers[-1].up_to is not None:
        ctx.problem(tf.mark, "rates.tiers-open", f"{rid}: the last tier must have no up_to (it prices everything beyond)")
    if not tiers:
        ctx.problem(tf.mark, "rates.pricing", f"{rid}: tiers need at least one level")
    return mode, tiers, per, inc


def _max_cost(f: Fields, ctx: Ctx, rid: str) -> MaxCost | None:
    raw = f.optional("maximum_cost", dict)
    if raw is None:
        return None
    mf = Fields(raw, f"{rid}.maximum_cost", ctx.problems)
    amount = ctx.amount(mf, "amount", required=True)
    strategy = ctx.enum(mf, "beyond", MaxCostStrategy, default=MaxCostStrategy.FREE_BEYOND) or MaxCostStrategy.FREE_BEYOND
    charge = ctx.enum(mf, "charge", MaxCostCharge, default=MaxCostCharge.CAPPED) or MaxCostCharge.CAPPED
    mf.done()
    if charge is MaxCostCharge.FULL and strategy is not MaxCostStrategy.DISCONNECT:
        ctx.problem(mf.node.mark_of("charge"), "rates.max-cost-charge",
                    f"{rid}: charge: full goes with beyond: disconnect (the other strategies charge at most the maximum)")
        charge = MaxCostCharge.CAPPED
    return MaxCost(amount, strategy, charge)


def _decimals(rf: Fields, ctx: Ctx) -> int:
    raw = rf.optional("decimals", int)
    if raw is None:
        return 2
    if raw > MAX_DECIMALS or raw < 0:
        ctx.problem(rf.node.mark_of("decimals"), "value.range",
                    f"{rf.what}.decimals: {raw} is outside 0..{MAX_DECIMALS}" + (f" ({MICROS_REASON})" if raw > MAX_DECIMALS else ""))
        return 2
    return int(raw)


def parse_rounding(f: Fields, ctx: Ctx, key: str) -> Rounding:
    raw = f.optional(key, dict)
    if raw is None:
        return Rounding()
    rf = Fields(raw, f"{f.what}.{key}", ctx.problems)
    mode = ctx.enum(rf, "mode", RoundingMode, default=RoundingMode.HALF_UP) or RoundingMode.HALF_UP
    # without explicit decimals money rounds to the currency's minor units (resolved by the compiler)
    decimals = _decimals(rf, ctx) if "decimals" in rf.node else None
    scope = ctx.enum(rf, "scope", RoundingScope, default=RoundingScope.PER_CALL) or RoundingScope.PER_CALL
    rf.done()
    return Rounding(mode, decimals, scope)

