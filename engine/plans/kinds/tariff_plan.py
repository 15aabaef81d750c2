"""``kind: tariff_plan`` — what a subscriber (retail) or an MVNO (wholesale) pays (TP_...).

A plan has versions; each version is complete (time bands, monthly fee,
included bundles, discounts, rate table) and takes effect at 00:00 of
``effective_from`` in the time zone of its time band set.  A CDR is rated by
the version in force at its start time.

A rate table row binds traffic to a rate::

    - {service: voice, destination: DST_NATIONAL, band: PEAK, rate: RT_NATIONAL_PEAK}

``add_ons`` lists the ``one_off`` bundles a subscriber on the version may buy (BillingService ``BuyAddOn``): each
must be a one_off bundle in the plan's currency whose ``priority`` is above (consumed after) every bundle of the
version for the same service, and not one of the version's own bundles.

Billing fields of a version: ``fee_timing`` (``advance``, the default, or
``arrears``) says when the bill run charges ``monthly_fee``; ``tax_category``
(default ``standard``) names the VAT category of ``plans/taxes/`` that the
plan's fee and usage are taxed at.

A plan's ``version_change`` says how a call that runs past the start of the
next version is priced: ``start`` (the default: wholly at the version in force
when it started) or ``split`` (cut at the change, each part at its version,
as a call is cut at a band change).  ``extends: TP_PARENT`` names a parent
(fallback) plan: a CDR this plan has no rate for is priced by the parent, to
any depth; a cycle is refused (``plans.extends-cycle``).

A row may name its own band set (``time_bands: TB_...``, its ``band`` then one
of that set's bands): while that band is in force the row prices its traffic
ahead of the version's rows (a holiday band for one destination only); at
other times the version's rows do.

``direction`` defaults to ``originating``, ``zone`` to ``home``, ``destination``
and ``band`` to ``any``.  The most specific row wins (zone, then destination,
then band, then direction); two rows for exactly the same traffic are
ambiguous.  A version may name a shared ``rate_table`` (RTT_...); its inline
``rates`` rows replace the table's rows for the same traffic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.cdr import Direction, Service
from engine.plans.kinds.common import Ctx
from engine.plans.model import ANY, FeeTiming, PlanVersion, RateBinding, Segment, TariffPlan, VersionChange
from engine.yamlio import Fields, Mark, MarkedList, MarkedMap

SERVICES = tuple(s.value for s in Service)
DIRECTIONS = tuple(d.value for d in Direction)


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> TariffPlan:
    f = Fields(node, "tariff_plan", ctx.problems)
    f.optional("kind", str)
    pid = ctx.ident(f, "tariff_plan")
    name = f.optional("name", str, default=pid)
    f.optional("description", str)
    tenant = f.required("tenant", str) or ""
    segment = ctx.enum(f, "segment", Segment, required=True) or Segment.RETAIL_POSTPAID
    customer = f.optional("customer", str, default="")
    currency = ctx.currency(f)
    raw_versions = f.required("versions", list) or []
    version_change = ctx.enum(f, "version_change", VersionChange, default=VersionChange.START) or VersionChange.START
    extends = f.optional("extends", str, default="") or ""
    f.done()
    if segment is Segment.WHOLESALE and not customer:
        ctx.problem(node.mark, "plans.wholesale-customer", f"{pid}: a wholesale plan names the MVNO it bills (customer)")
    if segment is Segment.RETAIL_POSTPAID and customer:
        ctx.problem(node.mark_of("customer"), "plans.retail-customer", f"{pid}: customer is only for wholesale plans")
    versions: list[PlanVersion] = []
    for i, item in enumerate(raw_versions):
        v = _version(item, ctx, pid, raw_versions.mark_of(i) if isinstance(raw_versions, MarkedList) else node.mark, currency)
        if v is None:
            continue
        if versions and v.version <= versions[-1].version:
            ctx.problem(v.mark, "plans.version-order", f"{pid}: version {v.version} must be greater than version {versions[-1].version}")
            continue
        if versions and v.effective_from <= versions[-1].effective_from:
            ctx.problem(v.mark, "plans.version-order",
                        f"{pid}: version {v.version} takes effect {v.effective_from}, not after version {versions[-1].version} ({versions[-1].effective_from})")
            continue
        versions.append(v)
    if not versions and raw_versions:
        ctx.problem(node.mark, "plans.no-versions", f"{pid}: no valid version")
    elif not raw_versions and "versions" in node:
        ctx.problem(node.mark_of("versions"), "plans.no-versions", f"{pid}: a tariff plan needs at least one version")
    return TariffPlan(pid, name, tenant, segment, customer or "", currency, tuple(versions), node.mark, version_change, extends,
                      {"extends": node.mark_of("extends"), "tenant": node.mark_of("tenant"), "segment": node.mark_of("segment")})


def _version(item: object, ctx: Ctx, pid: str, fallback: Mark, currency: str) -> PlanVersion | None:
    f = Fields(item, f"{pid}.version", ctx.problems, fallback=fallback)
    if not f.ok:
        return None
    number = ctx.integer(f, "version", 0, lo=1, required=True)
    effective = ctx.date_value(f, "effective_from")
    f.optional("notes", str)
    bands = f.required("time_bands", str) or ""
    fee = ctx.amount(f, "monthly_fee")
    ctx.billed(f, "monthly_fee", fee, currency)
    bundles, bundle_marks = ctx.str_list(f, "bundles")
    discounts, discount_marks = ctx.str_list(f, "discounts")
    add_ons, add_on_marks = ctx.str_list(f, "add_ons")
    rate_table = f.optional("rate_table", str, default="")
    raw_rates = (f.optional("rates", list) if rate_table else f.required("rates", list)) or []
    fee_timing = ctx.enum(f, "fee_timing", FeeTiming, default=FeeTiming.ADVANCE) or FeeTiming.ADVANCE
    tax_category = ctx.tax_category(f)
    f.done()
    refs: dict[str, Mark] = {"time_bands": f.node.mark_of("time_bands"), "rate_table": f.node.mark_of("rate_table")}
    refs.update({f"bundle:{b}": m for b, m in zip(bundles, bundle_marks)})
    refs.update({f"discount:{d}": m for d, m in zip(discounts, discount_marks)})
    refs.update({f"add_on:{b}": m for b, m in zip(add_ons, add_on_marks)})
    refs["tax_category"] = f.node.mark_of("tax_category")
    bindings = parse_rows(raw_rates, ctx, pid, f.mark)
    if number == 0 or effective is None:
        return None
    return PlanVersion(number, effective, bands, fee, tuple(bundles), tuple(discounts), tuple(bindings), f.mark, refs, rate_table,
                       fee_timing, tax_category, tuple(add_ons))


def parse_rows(raw_rates: Any, ctx: Ctx, owner: str, fallback: Mark) -> list[RateBinding]:
    bindings = []
    for i, row in enumerate(raw_rates):
        b = _binding(row, ctx, owner, raw_rates.mark_of(i) if isinstance(raw_rates, MarkedList) else fallback)
        if b is not None:
            bindings.append(b)
    return bindings


def _binding(row: object, ctx: Ctx, pid: str, fallback: Mark) -> RateBinding | None:
    f = Fields(row, f"{pid}.rates[]", ctx.problems, fallback=fallback)
    if not f.ok:
        return None
    service = f.required("service", str)
    if service is not None and service not in SERVICES:
        ctx.problem(f.node.mark_of("service"), "value.enum", f"{pid}: service {service!r} is not one of: {', '.join(SERVICES)}")
        service = None
    direction = ctx.choice(f, "direction", DIRECTIONS + (ANY,), Direction.ORIGINATING.value)
    destination = f.optional("destination", str, default=ANY)
    band = f.optional("band", str, default=ANY)
    zone = f.optional("zone", str, default="home")
    rate = f.required("rate", str)
    own_bands = f.optional("time_bands", str, default="") or ""
    f.done()
    if service is None or rate is None:
        return None
    return RateBinding(service, direction, destination, band, zone, rate, f.mark, own_bands)
