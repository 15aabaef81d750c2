"""Rate one mediated CDR against a compiled plan set: a pure function of its inputs.

Order of work for one CDR:

1. impossible values -> ``rejected`` (with the field and reason);
2. plan, version in force at the start time, zone, destination group
   (longest prefix) -> ``unrated`` with a reason code when any is missing;
3. split voice calls into spans at band boundaries (including midnight and DST
   changes); tiered rates, data, SMS, MMS and supplementary events are priced
   at the band in force when they start;
4. lay increments on one grid from the start of the call (an increment that
   straddles a boundary is charged in full at the rate of the span where it
   starts, see :mod:`engine.rating.models.stepped`);
5. let the subscriber's applicable bundles (in ``priority`` order) cover
   billed units before money;
6. money, exactly: sum of span amounts + connect fee, then the minimum charge,
   then the maximum cost, then one rounding with the first span's rate's mode
   and decimals (``per_span``/``per_increment`` rates round earlier, as they
   say).  A call entirely covered by bundles costs nothing (no connect fee,
   no minimum); a call with zero billed units still pays the connect fee and
   minimum charge, if the rate has them;
7. CDR-level discounts of the plan version, in plan order, each on what the
   previous ones left of the rounded charge (never below zero).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping

from engine.cdr import CdrValueError, MediatedCdr, Service, validate
from engine.money import divide_rounded, fraction_text, format_amount, round_fraction, RoundingMode
from engine.rating.compiled import CompiledBundle, CompiledPlans, CompiledRate, CompiledVersion
from engine.rating.discounts import ChargeLine
from engine.rating.models import Part
from engine.rating.result import (
    BundleState,
    BundleUse,
    DiscountLine,
    RatedCdr,
    RatedSpan,
    RatingStatus,
    UnratedReason,
)


class Rater:
    """``Rater(compiled).rate(cdr, subscriber_plan_id, bundle_state=None) -> RatedCdr``."""

    def __init__(self, compiled: CompiledPlans) -> None:
        self.compiled = compiled

    # -- entry point ---------------------------------------------------------------------------
    def rate(self, cdr: MediatedCdr, plan_id: str, bundle_state: BundleState | Mapping[str, int] | None = None) -> RatedCdr:
        try:
            validate(cdr)
            service = Service(cdr.service).value
        except (CdrValueError, ValueError) as exc:
            return RatedCdr(cdr.cdr_id, RatingStatus.REJECTED, reason=f"rejected: {exc}")
        plan = self.compiled.plan(plan_id)
        if plan is None:
            if not plan_id:
                return _unrated(cdr, UnratedReason.NO_PLAN, "no tariff plan is assigned to this subscriber or tenant")
            return _unrated(cdr, UnratedReason.NO_PLAN, f"tariff plan {plan_id!r} is not in the plan set", plan_id)
        epoch = int(cdr.start_time.timestamp())
        version = plan.version_at(epoch)
        if version is None:
            return _unrated(cdr, UnratedReason.NO_VERSION, f"{plan_id} has no version in force at {cdr.start_time.isoformat()}", plan_id)
        zone = self.compiled.zone_for(cdr.visited_network)
        if not zone:
            return _unrated(cdr, UnratedReason.NO_ZONE, f"visited network {cdr.visited_network!r} is in no zone", plan_id)
        group, prefix = version.index.lookup(cdr.b_number)
        units = _units(cdr, service)
        direction = cdr.direction.value if hasattr(cdr.direction, "value") else str(cdr.direction)
        state = bundle_state if isinstance(bundle_state, BundleState) or bundle_state is None else BundleState(bundle_state)
        return self._price(cdr, version, service, direction, zone, group, prefix, epoch, units, state)

    # -- the work ------------------------------------------------------------------------------
    def _price(self, cdr: MediatedCdr, v: CompiledVersion, service: str, direction: str, zone: str, group: str,
               prefix: str, epoch: int, units: int, state: BundleState | None) -> RatedCdr:
        table = v.table
        key = (service, direction, zone, group)
        band, until = v.clock.band_at(epoch)
        first = table.get((*key, band))
        if first is None:
            return _unrated(cdr, UnratedReason.NO_RATE,
                            f"{v.plan_id} v{v.version} has no rate for {service} {direction} in zone {zone} to "
                            f"{group or 'a number in no destination group'} ({cdr.b_number or '-'}) in band {band or '?'}",
                            v.plan_id)
        # spans: (start, end, band, rate)
        spans: list[tuple[int, int, str, CompiledRate]] = [(0, units, band, first)]
        if service == "voice" and first.model.splits_by_band and until < units:
            spans = [(0, until, band, first)]
            t = until
            while t < units:
                band, step = v.clock.band_at(epoch + t)
                rate = table.get((*key, band))
                if rate is None:
                    return _unrated(cdr, UnratedReason.NO_RATE,
                                    f"{v.plan_id} v{v.version} has no rate for {service} to {group or '-'} in band {band} "
                                    f"(the call enters it after {t} s)", v.plan_id)
                end = min(t + step, units)
                s0, _e0, b0, r0 = spans[-1]
                if b0 == band and r0 is rate:
                    spans[-1] = (s0, end, b0, r0)
                else:
                    spans.append((t, end, band, rate))
                t = end
        parts: list[Part] = []
        t = 0
        for i, (start, end, _band, rate) in enumerate(spans):
            t = rate.model.parts(i, t, end if i + 1 < len(spans) else units, units, parts)
        facts = _facts(cdr, v, service, direction, zone, group, units)
        uses = _consume_bundles(self.compiled.bundles, v, state, parts, service, group, zone, facts)
        billed = sum(p.units for p in parts)
        charged = sum(p.charged for p in parts)
        lead = spans[0][3]
        r = lead.rounding
        notes: list[str] = []
        span_amounts: list[Fraction] = []
        for i, (_s, _e, _b, rate) in enumerate(spans):
            amount = rate.model.amount([p for p in parts if p.span == i])
            if rate.rounding.scope == "per_span":
                amount = Fraction(round_fraction(amount, rate.rounding.mode, rate.rounding.decimals))
            span_amounts.append(amount)
        if billed and not charged:
            total = Fraction(0)
            notes.append("fully covered by bundles: no connect fee, no minimum charge")
        else:
            total = sum(span_amounts, Fraction(0)) + lead.connect_fee
            if lead.connect_fee:
                notes.append(f"connect fee {format_amount(lead.connect_fee)}")
            if total < lead.minimum_charge:
                notes.append(f"minimum charge {format_amount(lead.minimum_charge)} applies (usage {fraction_text(total)})")
                total = Fraction(lead.minimum_charge)
            if lead.maximum_cost is not None and total > lead.maximum_cost:
                what = "free beyond" if lead.beyond == "free_beyond" else "call should have been cut at"
                notes.append(f"maximum cost {format_amount(lead.maximum_cost)} ({what} the cap; uncapped {fraction_text(total)})")
                total = Fraction(lead.maximum_cost)
        gross = round_fraction(total, r.mode, r.decimals)
        if total.denominator != 1 or gross != total:
            notes.append(f"exact {fraction_text(total)} rounded {r.mode.value} to {r.decimals} decimals = {format_amount(gross)}")
        lines: list[DiscountLine] = []
        net = gross
        for d in v.discounts:
            if d.level != "cdr" or not gross:
                continue
            if d.applies(ChargeLine(gross, service, group, zone, v.plan_id, units, facts)):
                off = max(d.on_cdr(net), -net)
                if off:
                    lines.append(DiscountLine(d.id, off, d.name, service))
                    net += off
        rated_spans = tuple(
            RatedSpan(s, e, b, rate.id, sum(p.units for p in parts if p.span == i), sum(p.covered for p in parts if p.span == i),
                      span_amounts[i].numerator if span_amounts[i].denominator == 1
                      else divide_rounded(span_amounts[i].numerator, span_amounts[i].denominator, RoundingMode.HALF_EVEN))
            for i, (s, e, b, rate) in enumerate(spans)
        )
        explanation = _explain(cdr, v, service, zone, group, prefix, units, rated_spans, uses, notes, lines, net)
        return RatedCdr(
            cdr.cdr_id, RatingStatus.RATED, charge_micros=net, currency=v.currency, plan_id=v.plan_id,
            plan_version=v.version, service=service, destination=group, prefix=prefix, zone=zone, units=units,
            gross_micros=gross, spans=rated_spans, bundle_usage=tuple(uses), discounts=tuple(lines),
            explanation=explanation, bundle_state=None if state is None else state.consume(uses),
        )


def _units(cdr: MediatedCdr, service: str) -> int:
    if service == "voice":
        return cdr.duration_seconds
    if service == "data":
        return cdr.volume_up_bytes + cdr.volume_down_bytes
    return cdr.event_count


def _facts(cdr: MediatedCdr, v: CompiledVersion, service: str, direction: str, zone: str, group: str, units: int) -> dict[str, Any]:
    """What applicability conditions can test."""
    facts: dict[str, Any] = {
        "service": service, "direction": direction, "zone": zone, "destination": group, "units": units,
        "a_number": cdr.a_number, "b_number": cdr.b_number, "imsi": cdr.imsi, "tenant": cdr.tenant,
        "visited_network": cdr.visited_network, "plan": v.plan_id, "plan_version": v.version,
        "source": cdr.source, "supplementary_code": cdr.supplementary_code,
    }
    for k, val in cdr.attributes.items():
        facts.setdefault(k, val)
    return facts


def _consume_bundles(bundles: Mapping[str, CompiledBundle], v: CompiledVersion, state: BundleState | None, parts: list[Part],
                     service: str, group: str, zone: str, facts: Mapping[str, Any]) -> list[BundleUse]:
    if not state or not parts:
        return []
    usable = sorted(
        (b for bid in state if state[bid] > 0 and (b := bundles.get(bid)) is not None and b.applies(service, group, zone, facts)),
        key=lambda b: (b.priority, b.id),
    )
    uses: list[BundleUse] = []
    for b in usable:
        left = state[b.id]
        took = 0
        for p in parts:
            if left == 0:
                break
            take = min(p.charged, left)
            p.covered += take
            left -= take
            took += take
        if took:
            uses.append(BundleUse(b.id, took))
    return uses


def _unrated(cdr: MediatedCdr, code: UnratedReason, message: str, plan_id: str = "") -> RatedCdr:
    return RatedCdr(cdr.cdr_id, RatingStatus.UNRATED, reason=f"{code.value}: {message}", plan_id=plan_id,
                    explanation=f"not rated: {message}")


_UNIT_NAMES = {"voice": "s", "data": "B"}


def _explain(cdr: MediatedCdr, v: CompiledVersion, service: str, zone: str, group: str, prefix: str, units: int,
             spans: tuple[RatedSpan, ...], uses: list[BundleUse], notes: list[str], lines: list[DiscountLine], net: int) -> str:
    unit = _UNIT_NAMES.get(service, " events")
    dest = f"{group} (prefix {prefix})" if group else "no destination group"
    out = [f"{v.plan_id} v{v.version}: {service} {units}{unit} to {cdr.b_number or '-'} -> {dest}, zone {zone}"]
    for i, s in enumerate(spans, 1):
        covered = f", {s.bundle_units}{unit} from bundles" if s.bundle_units else ""
        out.append(f"span {i}: units {s.start}-{s.end} in band {s.band} at {s.rate_id}, billed {s.billed_units}{unit}{covered} = {format_amount(s.charge_micros)}")
    for u in uses:
        out.append(f"bundle {u.bundle_id} used {u.units}{unit}")
    out.extend(notes)
    for line in lines:
        out.append(f"discount {line.discount_id} {format_amount(line.amount_micros)}")
    out.append(f"charge {format_amount(net)} {v.currency}")
    return "; ".join(out)
