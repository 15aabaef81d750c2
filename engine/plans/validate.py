"""Cross-file checks on a parsed :class:`PlanSet`: references, ambiguity, gaps, unreachable rules.

Per-file checks (types, unknown fields, formats) happen in the kind parsers;
this module sees the whole catalogue.  Every problem is collected.
"""

from __future__ import annotations

from engine.plans import weekgrid
from engine.plans.model import ANY, SERVICE_UNITS, Bundle, PlanSet, PlanVersion, TariffPlan
from engine.plans.resolve import HOME, binding_key, effective_bindings, own_band_sets, resolve_table
from engine.yamlio import Mark, Problem


def validate_plan_set(ps: PlanSet) -> list[Problem]:
    out: list[Problem] = []
    _zones(ps, out)
    _time_bands(ps, out)
    for plan in ps.tariff_plans.values():
        for version in plan.versions:
            _version(ps, plan, version, out)
    _parents(ps, out)
    _rate_tables(ps, out)
    _bundles(ps, out)
    _discounts(ps, out)
    _taxes(ps, out)
    return out


def _parents(ps: PlanSet, out: list[Problem]) -> None:
    """``extends``: the parent exists, prices in the same currency, and no chain of parents comes back to a plan."""
    reported: set[str] = set()
    for plan in ps.tariff_plans.values():
        if not plan.extends:
            continue
        mark = plan.ref_marks.get("extends", plan.mark)
        if _dangling(out, mark, "tariff plan", plan.extends, ps.tariff_plans):  # type: ignore[arg-type]
            continue
        parent = ps.tariff_plans[plan.extends]
        if parent.currency != plan.currency:
            out.append(Problem.at(mark, "plans.currency-mismatch", f"{plan.id} is in {plan.currency}, its parent {parent.id} in {parent.currency}"))
        chain = [plan.id]
        at = plan.extends
        while at and at in ps.tariff_plans and at not in chain:
            chain.append(at)
            at = ps.tariff_plans[at].extends
        if at == plan.id and plan.id not in reported:
            reported.update(chain)
            out.append(Problem.at(mark, "plans.extends-cycle", f"{plan.id} extends itself through {' -> '.join(chain + [plan.id])}"))


def _rate_tables(ps: PlanSet, out: list[Problem]) -> None:
    for table in ps.rate_tables.values():
        for row in table.bindings:
            _dangling(out, row.mark, "rate", row.rate, ps.rates)  # type: ignore[arg-type]
            if row.destination != ANY:
                _dangling(out, row.mark, "destination group", row.destination, ps.destinations)  # type: ignore[arg-type]
            if row.zone not in (ANY, HOME):
                _dangling(out, row.mark, "zone", row.zone, ps.zones)  # type: ignore[arg-type]


def _dangling(out: list[Problem], mark: Mark, what: str, ref: str, table: dict[str, object]) -> bool:
    if ref in table:
        return False
    near = [k for k in table if k.split("_", 1)[-1][:4] == ref.split("_", 1)[-1][:4]]
    hint = f" (did you mean {near[0]}?)" if near else ""
    out.append(Problem.at(mark, "ref.dangling", f"{what} {ref!r} is not defined{hint}"))
    return True


def _zones(ps: PlanSet, out: list[Problem]) -> None:
    homes = [z for z in ps.zones.values() if z.home]
    for z in homes[1:]:
        out.append(Problem.at(z.mark, "zones.multiple-home", f"{z.id}: {homes[0].id} is already the home zone"))
    others = [z for z in ps.zones.values() if z.other_networks]
    for z in others[1:]:
        out.append(Problem.at(z.mark, "zones.multiple-other", f"{z.id}: {others[0].id} already catches other networks"))
    owner: dict[str, str] = {}
    for z in ps.zones.values():
        for net in z.visited_networks:
            if net in owner and owner[net] != z.id:
                out.append(Problem.at(z.mark, "zones.duplicate-network", f"{z.id}: visited network {net} is already in {owner[net]}"))
            owner.setdefault(net, z.id)


def _time_bands(ps: PlanSet, out: list[Problem]) -> None:
    for tb in ps.time_bands.values():
        for cal, mark in zip(tb.holiday_calendars, tb.calendar_marks):
            _dangling(out, mark, "holiday calendar", cal, ps.calendars)  # type: ignore[arg-type]
        if not tb.bands:
            continue
        won: set[str] = set()
        reported_ties: set[tuple[str, ...]] = set()
        gaps: dict[tuple[int, int], list[int]] = {}
        for day, holiday in weekgrid.DAY_KINDS:
            if holiday and not tb.holiday_calendars:
                continue
            for seg in weekgrid.day_segments(tb, day, holiday):
                if seg.winner is None:
                    if not holiday:
                        gaps.setdefault((seg.start, seg.end), []).append(day)
                    continue
                won.add(seg.winner)
                won.update(seg.tied)  # a tie is reported as ambiguous, not as unreachable
                if seg.tied and seg.tied not in reported_ties:
                    reported_ties.add(seg.tied)
                    second = next(b for b in tb.bands if b.id == seg.tied[1])
                    out.append(Problem.at(second.mark, "bands.ambiguous",
                                          f"{tb.id}: bands {' and '.join(seg.tied)} both apply on {weekgrid.describe(day, holiday, seg)} "
                                          f"with the same weight; give one a higher weight"))
        if gaps:
            where = ", ".join(f"{weekgrid.days_text(days)} {weekgrid.clock(s)}-{weekgrid.clock(e)}" for (s, e), days in sorted(gaps.items()))
            out.append(Problem.at(tb.mark, "bands.gap", f"{tb.id}: not covered by any band: {where}; every minute of the week needs a band"))
        for band in tb.bands:
            if band.id not in won:
                why = "no holiday calendar is attached" if band.holidays and not tb.holiday_calendars else "higher-weight bands cover all its windows"
                out.append(Problem.at(band.mark, "bands.unreachable", f"{tb.id}.{band.id} never applies: {why}"))


def _version(ps: PlanSet, plan: TariffPlan, v: PlanVersion, out: list[Problem]) -> None:
    where = f"{plan.id} v{v.version}"
    band_set = ps.time_bands.get(v.time_bands)
    _dangling(out, v.ref_marks.get("time_bands", v.mark), "time band set", v.time_bands, ps.time_bands)  # type: ignore[arg-type]
    if v.rate_table:
        _dangling(out, v.ref_marks.get("rate_table", v.mark), "rate table", v.rate_table, ps.rate_tables)  # type: ignore[arg-type]
    rows = effective_bindings(v, ps)
    for b in v.bundles:
        mark = v.ref_marks.get(f"bundle:{b}", v.mark)
        if not _dangling(out, mark, "bundle", b, ps.bundles):  # type: ignore[arg-type]
            if ps.bundles[b].currency and ps.bundles[b].currency != plan.currency:
                out.append(Problem.at(mark, "plans.currency-mismatch", f"{where}: bundle {b} is priced in {ps.bundles[b].currency}, the plan in {plan.currency}"))
    _add_ons(ps, plan, v, where, out)
    for d in v.discounts:
        mark = v.ref_marks.get(f"discount:{d}", v.mark)
        if not _dangling(out, mark, "discount plan", d, ps.discount_plans):  # type: ignore[arg-type]
            if ps.discount_plans[d].currency != plan.currency:
                out.append(Problem.at(mark, "plans.currency-mismatch", f"{where}: discount {d} is in {ps.discount_plans[d].currency}, the plan in {plan.currency}"))
    ok_rows = []
    for row in rows:
        bad = _dangling(out, row.mark, "rate", row.rate, ps.rates)  # type: ignore[arg-type]
        if row.destination != ANY:
            bad |= _dangling(out, row.mark, "destination group", row.destination, ps.destinations)  # type: ignore[arg-type]
        if row.zone not in (ANY, HOME):
            bad |= _dangling(out, row.mark, "zone", row.zone, ps.zones)  # type: ignore[arg-type]
        row_set = ps.time_bands.get(row.time_bands) if row.time_bands else band_set
        if row.time_bands and row_set is None:
            bad |= _dangling(out, row.mark, "time band set", row.time_bands, ps.time_bands)  # type: ignore[arg-type]
        elif row.band != ANY and row_set is not None and row.band not in {b.id for b in row_set.bands}:
            out.append(Problem.at(row.mark, "ref.dangling", f"band {row.band!r} is not in time band set {row_set.id}"))
            bad = True
        rate = ps.rates.get(row.rate)
        if rate is not None:
            if rate.unit is not SERVICE_UNITS[row.service]:
                out.append(Problem.at(row.mark, "rates.unit-mismatch",
                                      f"{row.service} is counted in {SERVICE_UNITS[row.service].value}s but {rate.id} prices {rate.unit.value}s"))
                bad = True
            if rate.currency and rate.currency != plan.currency:
                out.append(Problem.at(row.mark, "rates.currency-mismatch", f"{rate.id} is in {rate.currency}, the plan {plan.id} in {plan.currency}"))
                bad = True
        if not bad:
            ok_rows.append(row)
    seen: dict[tuple[str, ...], Mark] = {}
    duplicates: set[int] = set()
    for row in ok_rows:
        key = (*binding_key(row, ps), *((row.time_bands,) if row.time_bands else ()))
        if key in seen:
            duplicates.add(id(row))
            out.append(Problem.at(row.mark, "rates.ambiguous",
                                  f"this row prices the same traffic as the row at line {seen[key].line} "
                                  f"({'/'.join(key)}); remove one or make it more specific"))
        else:
            seen[key] = row.mark
    _prefix_conflicts(ps, v, where, out)
    if band_set is None:
        return
    winners = {id(b) for own in ["", *own_band_sets(v, ps)] for b in resolve_table(v, ps, own).values()}
    for row in ok_rows:
        if id(row) not in winners and id(row) not in duplicates:
            out.append(Problem.at(row.mark, "rates.unreachable",
                                  f"more specific rows price all the traffic this row matches (time bands {band_set.id}); remove it or narrow the others"))


def _add_ons(ps: PlanSet, plan: TariffPlan, v: PlanVersion, where: str, out: list[Problem]) -> None:
    """An add-on is a bundle (one_off, or monthly: bought apart from the plan, recurring every bill cycle) in the plan's
    currency, not one of the version's bundles, consumed after them."""
    seen: set[str] = set()
    for b in v.add_ons:
        mark = v.ref_marks.get(f"add_on:{b}", v.mark)
        if b in seen:
            out.append(Problem.at(mark, "id.duplicate", f"{where}: add-on {b} is listed twice"))
            continue
        seen.add(b)
        if _dangling(out, mark, "bundle", b, ps.bundles):  # type: ignore[arg-type]
            continue
        bundle = ps.bundles[b]
        if b in v.bundles:
            out.append(Problem.at(mark, "plans.add-on-included", f"{where}: {b} is one of the version's bundles already"))
        if bundle.currency and bundle.currency != plan.currency:
            out.append(Problem.at(mark, "plans.currency-mismatch", f"{where}: add-on {b} is priced in {bundle.currency}, the plan in {plan.currency}"))
        for own in v.bundles:
            mine = ps.bundles.get(own) if own != b else None
            if mine is not None and _overlap(mine, bundle) and mine.priority >= bundle.priority:
                out.append(Problem.at(mark, "plans.add-on-priority",
                                      f"{where}: add-on {b} (priority {bundle.priority}) would be consumed before the plan's bundle "
                                      f"{own} (priority {mine.priority}); give the add-on a higher priority number"))


def _overlap(a: Bundle, b: Bundle) -> bool:
    """Whether some traffic could be covered by both bundles (an empty list is any; conditions are not compared)."""
    def meet(x: tuple[str, ...], y: tuple[str, ...]) -> bool:
        return not x or not y or ANY in x or ANY in y or bool(set(x) & set(y))

    return a.service == b.service and meet(a.destinations, b.destinations) and meet(a.zones, b.zones)


def version_groups(ps: PlanSet, v: PlanVersion) -> list[str]:
    """Destination groups a plan version needs in its prefix index (rate rows, bundles, add-ons, discounts)."""
    groups = {b.destination for b in effective_bindings(v, ps) if b.destination != ANY}
    for b in (*v.bundles, *v.add_ons):
        if b in ps.bundles:
            groups.update(ps.bundles[b].destinations)
    for d in v.discounts:
        if d in ps.discount_plans:
            groups.update(ps.discount_plans[d].destinations)
    return sorted(g for g in groups if g in ps.destinations)


def _prefix_conflicts(ps: PlanSet, v: PlanVersion, where: str, out: list[Problem]) -> None:
    """A prefix in two groups of one version is fine when their priorities say which wins, ambiguous otherwise."""
    gids = version_groups(ps, v)
    if sum(len(ps.destinations[g].prefixes) for g in gids) == len({p for g in gids for p in ps.destinations[g].prefixes}):
        return   # no prefix in two groups (the common plan set): nothing to look at prefix by prefix
    owners: dict[str, list[str]] = {}
    for gid in gids:
        group = ps.destinations[gid]
        for prefix, mark in zip(group.prefixes, group.prefix_marks):
            others = owners.setdefault(prefix, [])
            tie = next((o for o in others if ps.destinations[o].priority == group.priority), None)
            if tie is not None:
                out.append(Problem.at(mark, "destinations.ambiguous-prefix",
                                      f"prefix {prefix} is in both {tie} and {gid} with the same priority ({group.priority}), "
                                      f"which one plan version uses together; give one group a higher priority"))
            others.append(gid)


def _bundles(ps: PlanSet, out: list[Problem]) -> None:
    for bundle in ps.bundles.values():
        for d in bundle.destinations:
            _dangling(out, bundle.ref_marks.get(f"destination:{d}", bundle.mark), "destination group", d, ps.destinations)  # type: ignore[arg-type]
        for z in bundle.zones:
            if z not in (HOME, ANY):
                _dangling(out, bundle.ref_marks.get(f"zone:{z}", bundle.mark), "zone", z, ps.zones)  # type: ignore[arg-type]


def _discounts(ps: PlanSet, out: list[Problem]) -> None:
    for dp in ps.discount_plans.values():
        for d in dp.destinations:
            _dangling(out, dp.ref_marks.get(f"destination:{d}", dp.mark), "destination group", d, ps.destinations)  # type: ignore[arg-type]
        for p in dp.plans:
            _dangling(out, dp.ref_marks.get(f"plan:{p}", dp.mark), "tariff plan", p, ps.tariff_plans)  # type: ignore[arg-type]


def _taxes(ps: PlanSet, out: list[Problem]) -> None:
    """One tax table per country; a tax category named by a plan or bundle is defined by some tax table.

    Plan sets without tax tables (rating-only sets) are not checked: the bill run reports a missing table
    per account when it needs one."""
    by_country: dict[str, str] = {}
    for table in ps.tax_tables.values():
        if table.country in by_country:
            out.append(Problem.at(table.mark, "taxes.duplicate-country",
                                  f"{table.id}: country {table.country} already has tax table {by_country[table.country]}"))
        by_country.setdefault(table.country, table.id)
    if not ps.tax_tables:
        return
    known = {c for t in ps.tax_tables.values() for c in t.categories}
    users: list[tuple[str, Mark]] = [(v.tax_category, v.ref_marks.get("tax_category", v.mark))
                                     for p in ps.tariff_plans.values() for v in p.versions]
    users += [(b.tax_category, b.ref_marks.get("tax_category", b.mark)) for b in ps.bundles.values()]
    for category, mark in users:
        if category not in known:
            out.append(Problem.at(mark, "ref.dangling", f"tax category {category!r} is defined by no tax table "
                                                        f"(known: {', '.join(sorted(known))})"))
