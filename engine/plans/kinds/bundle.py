"""``kind: bundle`` — an allowance consumed before money (BN_...).

::

    allowance: {service: voice, amount: "500min"}     # or sms: 100 events, data: "5GB"
    destinations: [DST_NATIONAL, DST_ONNET]             # empty = any destination
    zones: [home]                                       # empty = any zone
    recurrence: monthly          # or one_off (validity_days)
    fee: "5.00"
    proration: daily             # daily | full | none, on mid-cycle activation
    priority: 10                 # lower is consumed first when several apply
    condition: {...}             # optional, the shared condition language
    fee_timing: advance          # billing: advance (default) | arrears
    tax_category: standard       # billing: VAT category in plans/taxes/ (default standard)
    refund: none                 # billing, add-ons: none (default) | unused | prorated, on cancelling one; a monthly add-on:
                                 # none stops it at the bill cycle's end, prorated at once (its fee by the days served)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.cdr import Service
from engine.plans.kinds.common import Ctx
from engine.plans.model import SERVICE_UNITS, Applicability, Bundle, FeeTiming, Proration, Recurrence, Refund, Unit
from engine.yamlio import Fields, Mark, MarkedMap

SERVICES = tuple(s.value for s in Service)


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> Bundle:
    f = Fields(node, "bundle", ctx.problems)
    f.optional("kind", str)
    bid = ctx.ident(f, "bundle")
    name = f.optional("name", str, default=bid)
    f.optional("description", str)
    service, unit, amount = "voice", Unit.SECOND, 0
    raw_allowance = f.required("allowance", dict)
    if raw_allowance is not None:
        af = Fields(raw_allowance, f"{bid}.allowance", ctx.problems)
        service = ctx.choice(af, "service", SERVICES, "voice")
        if "service" not in af.node:
            ctx.problem(af.mark, "schema.missing", f"{bid}.allowance: missing field 'service'")
        unit = SERVICE_UNITS[service]
        amount = ctx.units(af, "amount", required=True)
        af.done()
    destinations, dest_marks = ctx.str_list(f, "destinations")
    zones, zone_marks = ctx.str_list(f, "zones")
    recurrence = ctx.enum(f, "recurrence", Recurrence, required=True) or Recurrence.MONTHLY
    validity = ctx.integer(f, "validity_days", 0, lo=1, hi=3660)
    fee = ctx.amount(f, "fee")
    currency = ctx.currency(f)
    ctx.billed(f, "fee", fee, currency)
    proration = ctx.enum(f, "proration", Proration, default=Proration.DAILY) or Proration.DAILY
    priority = ctx.integer(f, "priority", 100, lo=0, hi=1_000_000)
    condition = parse_condition_field(f, ctx, f"{bid}.condition")
    fee_timing = ctx.enum(f, "fee_timing", FeeTiming, default=FeeTiming.ADVANCE) or FeeTiming.ADVANCE
    tax_category = ctx.tax_category(f)
    refund = ctx.enum(f, "refund", Refund, default=Refund.NONE) or Refund.NONE
    f.done()
    if recurrence is Recurrence.ONE_OFF and not validity:
        ctx.problem(node.mark, "bundles.validity", f"{bid}: a one_off bundle needs validity_days")
    if recurrence is Recurrence.MONTHLY and validity:
        ctx.problem(node.mark_of("validity_days"), "bundles.validity", f"{bid}: validity_days is for one_off bundles; monthly ones follow the bill cycle")
    if recurrence is Recurrence.MONTHLY and refund is Refund.UNUSED:
        ctx.problem(node.mark_of("refund"), "bundles.refund", f"{bid}: refund: unused is for one_off bundles; a monthly add-on's "
                                                              f"cancel is none (at the bill cycle's end) or prorated (at once)")
    refs: dict[str, Mark] = {f"destination:{d}": m for d, m in zip(destinations, dest_marks)}
    refs.update({f"zone:{z}": m for z, m in zip(zones, zone_marks)})
    refs["tax_category"] = node.mark_of("tax_category")
    return Bundle(bid, name, service, unit, amount, tuple(destinations), tuple(zones), recurrence, validity,
                  fee, currency, proration, priority, condition, node.mark, refs, fee_timing, tax_category, refund)


def parse_condition_field(f: Fields, ctx: Ctx, what: str) -> Any:
    """Parse ``condition`` with the shared condition language (engine.conditions) when present."""
    f.seen.add("condition")
    if "condition" not in f.node or f.node["condition"] is None:
        return None
    from engine.conditions import parse_condition

    parsed = parse_condition(f.node["condition"], what, ctx.problems, f.node.mark_of("condition"))
    # the IR keeps the canonical plain form, rebuilt with condition_from_plain when compiled
    return None if parsed is None else Applicability(parsed.to_plain(), parsed)
