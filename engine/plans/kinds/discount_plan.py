"""``kind: discount_plan`` — money off (DP_...).  One model per kind, see engine/rating/discounts/.

::

    type: percentage        # percentage | fixed | tiered | commitment
    level: period           # cdr (each rated CDR) | period (a bill period's charges)
    percent: "10"           # percentage
    amount: "5.00"          # fixed: amount off per period / CDR; commitment: the minimum spend
    tiers: {mode: graduated, levels: [{up_to: "1000.00", percent: "0"}, {percent: "5"}]}   # spend tiers
    services: [voice]       # what it applies to; empty = everything
    destinations: [DST_INTERNATIONAL]
    condition: {...}        # shared condition language, over the charge line
    rounding: {mode: half_up, decimals: 2}

Billing fields (period discounts; the bill run reads them, rating ignores them)::

    charges: [usage]        # which charges it sees: usage (default), fees, one_off
    plans: [TP_SMART_M]     # only the charges of these tariff plans (for discounts given to an account)
    compounding: gross      # gross (default): on the applicable charges before other discounts;
                            # net: on what the discounts before it (in the plan's order) left
    commitment_basis: before_discounts   # commitment only: before_discounts (default) | after_discounts
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from engine.cdr import Service
from engine.money import AmountError, parse_amount, parse_percent
from engine.plans.kinds.bundle import parse_condition_field
from engine.plans.kinds.common import Ctx
from engine.plans.kinds.rate import parse_rounding
from engine.plans.model import (
    ChargeKind,
    CommitmentBasis,
    Compounding,
    DiscountKind,
    DiscountLevel,
    DiscountPlan,
    DiscountTier,
    TierMode,
)
from engine.yamlio import Fields, Mark, MarkedList, MarkedMap

SERVICES = tuple(s.value for s in Service)


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> DiscountPlan:
    f = Fields(node, "discount_plan", ctx.problems)
    f.optional("kind", str)
    did = ctx.ident(f, "discount_plan")
    name = f.optional("name", str, default=did)
    f.optional("description", str)
    kind = ctx.enum(f, "type", DiscountKind, required=True) or DiscountKind.PERCENTAGE
    level = ctx.enum(f, "level", DiscountLevel, default=DiscountLevel.PERIOD) or DiscountLevel.PERIOD
    currency = ctx.currency(f)
    services, service_marks = ctx.str_list(f, "services")
    for s, m in zip(services, service_marks):
        if s not in SERVICES:
            ctx.problem(m, "value.enum", f"{did}: service {s!r} is not one of: {', '.join(SERVICES)}")
    destinations, dest_marks = ctx.str_list(f, "destinations")
    percent = _percent(f, ctx, "percent", did) if "percent" in node else Fraction(0)
    amount = ctx.amount(f, "amount")
    if kind in (DiscountKind.FIXED, DiscountKind.COMMITMENT):
        ctx.billed(f, "amount", amount, currency)
    tier_mode, tiers = _tiers(f, ctx, did)
    rounding = parse_rounding(f, ctx, "rounding")
    condition = parse_condition_field(f, ctx, f"{did}.condition")
    compounding = ctx.enum(f, "compounding", Compounding, default=Compounding.GROSS) or Compounding.GROSS
    basis = ctx.enum(f, "commitment_basis", CommitmentBasis, default=CommitmentBasis.BEFORE_DISCOUNTS) or CommitmentBasis.BEFORE_DISCOUNTS
    charge_names, charge_marks = ctx.str_list(f, "charges")
    charges: list[ChargeKind] = []
    for c, m in zip(charge_names, charge_marks):
        try:
            charges.append(ChargeKind(c))
        except ValueError:
            ctx.problem(m, "value.enum", f"{did}.charges: {c!r} is not one of: {', '.join(k.value for k in ChargeKind)}")
    plans, plan_marks = ctx.str_list(f, "plans")
    f.done()
    needs = {
        DiscountKind.PERCENTAGE: ("percent",),
        DiscountKind.FIXED: ("amount",),
        DiscountKind.TIERED: ("tiers",),
        DiscountKind.COMMITMENT: ("amount",),
    }[kind]
    for key in ("percent", "amount", "tiers"):
        if key in needs and key not in node:
            ctx.problem(node.mark, "schema.missing", f"{did}: a {kind.value} discount needs '{key}'")
        elif key not in needs and key in node:
            ctx.problem(node.key_mark(key), "discounts.unused-field", f"{did}: '{key}' has no meaning for a {kind.value} discount")
    if kind in (DiscountKind.TIERED, DiscountKind.COMMITMENT) and level is DiscountLevel.CDR:
        ctx.problem(node.mark_of("level"), "discounts.level", f"{did}: {kind.value} discounts work on a bill period (level: period)")
    if "commitment_basis" in node and kind is not DiscountKind.COMMITMENT:
        ctx.problem(node.key_mark("commitment_basis"), "discounts.unused-field", f"{did}: 'commitment_basis' is for commitment discounts")
    if "compounding" in node and kind is DiscountKind.COMMITMENT:
        ctx.problem(node.key_mark("compounding"), "discounts.unused-field",
                    f"{did}: a commitment charges a shortfall; say how spend is measured with 'commitment_basis'")
    if level is DiscountLevel.CDR:
        for key in ("charges", "plans", "compounding"):
            if key in node:
                ctx.problem(node.key_mark(key), "discounts.unused-field", f"{did}: '{key}' is for period discounts (level: period)")
    refs = {f"destination:{d}": m for d, m in zip(destinations, dest_marks)}
    refs.update({f"plan:{p}": m for p, m in zip(plans, plan_marks)})
    return DiscountPlan(did, name, kind, level, currency, tuple(services), tuple(destinations), condition, percent,
                        amount, tier_mode, tuple(tiers), rounding, node.mark, refs, compounding, basis,
                        tuple(dict.fromkeys(charges)) or (ChargeKind.USAGE,), tuple(plans))


def _percent(f: Fields, ctx: Ctx, key: str, did: str) -> Fraction:
    raw = f.optional(key, (str, int, float))
    if raw is None:
        return Fraction(0)
    try:
        value = parse_percent(raw)
    except AmountError as exc:
        ctx.problem(f.node.mark_of(key), "value.amount", f"{did}.{key}: {exc}")
        return Fraction(0)
    if not 0 <= value <= 1:
        ctx.problem(f.node.mark_of(key), "value.range", f"{did}.{key}: a percentage is between 0 and 100")
        return Fraction(0)
    return value


def _tiers(f: Fields, ctx: Ctx, did: str) -> tuple[TierMode | None, list[DiscountTier]]:
    raw = f.optional("tiers", dict)
    if raw is None:
        return None, []
    tf = Fields(raw, f"{did}.tiers", ctx.problems)
    mode = ctx.enum(tf, "mode", TierMode, required=True)
    levels = tf.required("levels", list) or []
    tf.done()
    out: list[DiscountTier] = []
    prev: int | None = 0
    for i, item in enumerate(levels):
        mark: Mark = levels.mark_of(i) if isinstance(levels, MarkedList) else tf.mark
        lf = Fields(item, f"{did}.tiers.levels[{i}]", ctx.problems, fallback=mark)
        if not lf.ok:
            continue
        up_to = None
        if "up_to" in lf.node:
            try:
                up_to = parse_amount(lf.optional("up_to", (str, int, float)))
            except AmountError as exc:
                ctx.problem(lf.node.mark_of("up_to"), "value.amount", f"{did}: {exc}")
                continue
        pct = _percent(lf, ctx, "percent", did)
        if "percent" not in lf.node:
            ctx.problem(lf.mark, "schema.missing", f"{did}.tiers.levels[{i}]: missing field 'percent'")
        lf.done()
        if prev is None:
            ctx.problem(lf.mark, "discounts.unreachable-tier", f"{did}: tier {i + 1} follows an unbounded tier and is never reached")
            continue
        if up_to is not None and up_to <= prev:
            ctx.problem(lf.mark, "discounts.tiers-order", f"{did}: tier limits must increase")
            continue
        out.append(DiscountTier(up_to, pct))
        prev = up_to
    if out and out[-1].up_to_micros is not None:
        ctx.problem(tf.mark, "discounts.tiers-open", f"{did}: the last tier must have no up_to")
    return mode, out
