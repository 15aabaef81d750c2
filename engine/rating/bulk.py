"""Bulk rating straight from CSV rows: the hot path of re-rating runs and replay-style throughput.

:class:`BulkRater` rates normalised-CDR rows (lists of strings, as
``csv.reader`` yields them) without building a :class:`MediatedCdr`: timestamp
parsing is cached per date, the plan version, band clock and prefix index are
looked up once per start minute, and a call without bundles is priced by the
rate's precompiled integer function (one span) or by integer arithmetic over
the spans (a voice call crossing band boundaries, stepped rates rounded per
call).  :meth:`BulkRater.rate_rows` runs the loop itself for many rows.
Anything else (bad values, unusual timestamps, other rate kinds) falls back to
the full :class:`~engine.rating.rater.Rater`, so results are always the same
as the full path's; differential tests check that.
"""

from __future__ import annotations

from datetime import date
from math import lcm
from typing import Any, Callable, Iterable, Sequence

from engine.cdr import COLUMNS, CdrValueError, from_row
from engine.money import round_micros
from engine.rating.compiled import CompiledPlans, CompiledRate, CompiledVersion
from engine.rating.models import Part
from engine.rating.models.stepped import SteppedModel
from engine.rating.rater import Rater
from engine.rating.result import RatingStatus

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
RATED, UNRATED, REJECTED = RatingStatus.RATED.value, RatingStatus.UNRATED.value, RatingStatus.REJECTED.value
_SERVICES = frozenset({"voice", "sms", "mms", "data", "supplementary"})
# what rate_rows keeps per (service, group) of the common case: rate id, memo.get and the quick pricer
_Quick = tuple[str, Callable[[int], "int | None"], Callable[[int], int]]


def quick_table(compiled: CompiledPlans, v: CompiledVersion, band: str) -> dict[str, dict[str, _Quick]]:
    """service -> group -> (rate id, memo.get, quick) for originating calls at home in one band of a version.

    The same entries as ``v.table[(service, "originating", "home", group, band)]``,
    restricted to rates with an integer pricer; built once per plan set.
    """
    key = ("quick_table", id(v), band)
    cached = compiled.derived.get(key)
    if cached is None or cached[0] is not v:
        table: dict[str, dict[str, _Quick]] = {}
        for (service, direction, zone, group, b), rate in v.table.items():
            if direction == "originating" and zone == "home" and b == band and service in _SERVICES and _has_quick(rate):
                assert rate.memo is not None and rate.quick is not None
                table.setdefault(service, {})[group] = (rate.id, rate.memo.get, rate.quick)
        cached = compiled.derived[key] = (v, table)
    return cached[1]


def _has_quick(rate: CompiledRate) -> bool:
    return rate.quick is not None and rate.memo is not None


def _splits_exactly(rate: CompiledRate) -> bool:
    # what BulkRater._split reproduces: stepped increments, one rounding per call
    return type(rate.model) is SteppedModel and rate.rounding.scope == "per_call" and rate.unit == "second"


class BulkRater:
    """``BulkRater(compiled, header).rate_row(row, plan_id) -> (status, charge_micros, rate_id_or_reason)``."""

    def __init__(self, compiled: CompiledPlans, header: Sequence[str] = COLUMNS) -> None:
        self.compiled = compiled
        self.rater = Rater(compiled)
        self.header = list(header)
        col = {name: i for i, name in enumerate(self.header)}
        self._i_service = col["service"]
        self._i_direction = col.get("direction", -1)
        self._i_start = col["start_time"]
        self._i_b = col.get("b_number", -1)
        self._i_duration = col.get("duration_seconds", -1)
        self._i_up = col.get("volume_up_bytes", -1)
        self._i_down = col.get("volume_down_bytes", -1)
        self._i_events = col.get("event_count", -1)
        self._i_visited = col.get("visited_network", -1)
        self._days: dict[str, int] = {}
        self._version: tuple[str, int, int, CompiledVersion | None] = ("", 0, -1, None)
        self._row_raters: dict[str, Callable[[list[str]], tuple[str, int, str]]] = {}
        self._batch_minutes: dict[str, dict[str, tuple[Any, ...]]] = {}
        self.fallbacks = 0

    def _epoch(self, text: str) -> int:
        # the normalised format writes "YYYY-MM-DDTHH:MM:SSZ"; anything else goes the slow way
        if len(text) != 20 or text[10] != "T" or text[19] != "Z":
            raise ValueError(text)
        hh, mm, ss = text[11:13], text[14:16], text[17:19]
        digits = hh + mm + ss
        # the full path rejects an hour or minute out of range (as it does seconds; the per-row loops read
        # the seconds only for calls near a band change, see _split)
        if not (text[13] == text[16] == ":" and digits.isascii() and digits.isdigit() and hh < "24" and mm < "60" and ss < "60"):
            raise ValueError(text)
        day = self._days.get(text[:10])
        if day is None:
            day = (date.fromisoformat(text[:10]).toordinal() - _EPOCH_ORDINAL) * 86400
            self._days[text[:10]] = day
        return day + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])

    def rate_row(self, row: list[str], plan_id: str) -> tuple[str, int, str]:
        """Rate one row (see :meth:`row_rater` for the fastest loop over many rows of one plan)."""
        return self.row_rater(plan_id)(row)

    def row_rater(self, plan_id: str) -> Callable[[list[str]], tuple[str, int, str]]:
        """A function rating rows of one plan; everything it needs is bound once (the hot loop).

        Per distinct start minute it caches the epoch, the plan version and the
        band in force with the seconds until the band may change (band
        boundaries, version starts and DST changes all fall on whole minutes).
        """
        cached = self._row_raters.get(plan_id)
        if cached is not None:
            return cached
        i_service, i_direction, i_start, i_b = self._i_service, self._i_direction, self._i_start, self._i_b
        i_duration, i_up, i_down, i_events, i_visited = self._i_duration, self._i_up, self._i_down, self._i_events, self._i_visited
        zone_for = self.compiled.zone_for
        slow = self._slow
        services = _SERVICES
        plan = self.compiled.plans.get(plan_id)
        minutes: dict[str, tuple[int, Any, str, int, Any, Any, tuple[int, ...], bool]] = {}

        def minute(key: str) -> tuple[int, Any, str, int, Any, Any, tuple[int, ...], bool]:
            epoch = self._epoch(key + ":00Z")
            v = plan.version_at(epoch) if plan is not None else None
            if v is None:
                entry: tuple[int, Any, str, int, Any, Any, tuple[int, ...], bool] = (epoch, None, "", 0, None, None, (), False)
            else:
                band, until = v.clock.band_at(epoch)
                # everything the row needs from this version, as bound methods and tuples
                entry = (epoch, v, band, until, v.table.get, v.index.groups_get, v.index.lengths, v.cdr_discounts)
            if len(minutes) > 500_000:
                minutes.clear()
            minutes[key] = entry
            return entry

        if min(i_service, i_direction, i_start, i_b, i_duration, i_up, i_down, i_events, i_visited) < 0:
            # not the full normalised layout: every row takes the full path
            def everything_slow(row: list[str]) -> tuple[str, int, str]:
                return slow(row, plan_id)

            self._row_raters[plan_id] = everything_slow
            return everything_slow

        def rate(row: list[str]) -> tuple[str, int, str]:
            try:
                service = row[i_service]
                text = row[i_start]
                if service not in services or len(text) != 20 or text[19] != "Z":
                    raise LookupError
                key = text[:16]
                _epoch, v, band, until, table_get, groups_get, lengths, cdr_discounts = minutes.get(key) or minute(key)
                if v is None or cdr_discounts:
                    raise LookupError
                if service == "voice":
                    units = int(row[i_duration] or 0)
                    # `until` counts from the start of the minute; read the seconds only when it matters
                    if units > until - 59 and until - int(text[17:19]) < units:
                        # crosses a band boundary: several spans, priced apart (or by the full rater)
                        split = self._split(v, row[i_direction] or "originating", row[i_visited], row[i_b], _epoch, text, units)
                        if split is None:
                            raise LookupError
                        return RATED, split[0], split[1]
                elif service == "data":
                    units = int(row[i_up] or 0) + int(row[i_down] or 0)
                else:
                    units = int(row[i_events] or 1)
                number = row[i_b]
                group = ""
                n = len(number)
                for length in lengths:
                    if length <= n:
                        g = groups_get(number[:length])
                        if g is not None:
                            group = g
                            break
                visited = row[i_visited]
                rate_ = table_get((service, row[i_direction] or "originating", zone_for(visited) if visited else "home", group, band))
                if rate_ is None or rate_.quick is None or units < 0:
                    raise LookupError
                charge = rate_.memo.get(units)
                if charge is None:
                    charge = rate_.quick(units)
                return RATED, charge, rate_.id
            except (LookupError, ValueError):
                return slow(row, plan_id)

        self._row_raters[plan_id] = rate
        return rate

    def rate_rows(self, rows: Iterable[list[str]], plan_id: str) -> tuple[list[str], list[int], list[str]]:
        """Rate many rows of one plan (a ``csv.reader`` can be passed directly): three parallel lists.

        ``(statuses, charges_micros, rate_ids_or_reasons)``, one entry per row, the
        same as :meth:`row_rater` gives row by row.  The loop runs here, so the
        common case -- an originating call at home priced in one span -- costs no
        function call: per start minute it keeps the band's ``service -> group ->
        (rate id, memo.get, quick)`` table and the version's prefix index.  Every
        other row (roaming, terminating, band-crossing, unusual values) goes
        through :meth:`row_rater`'s function (and from there, if need be, the
        full rater).  Memory grows with the rows: feed a long file in chunks
        (``itertools.islice``).
        """
        statuses: list[str] = []
        charges: list[int] = []
        ids: list[str] = []
        add_status, add_charge, add_id = statuses.append, charges.append, ids.append
        general = self.row_rater(plan_id)
        i_service, i_direction, i_start, i_b = self._i_service, self._i_direction, self._i_start, self._i_b
        i_duration, i_up, i_down = self._i_duration, self._i_up, self._i_down
        i_events, i_visited = self._i_events, self._i_visited
        if min(i_service, i_direction, i_start, i_b, i_duration, i_up, i_down, i_events, i_visited) < 0:
            for row in rows:
                status, charge, rid = general(row)
                add_status(status)
                add_charge(charge)
                add_id(rid)
            return statuses, charges, ids
        compiled = self.compiled
        plan = compiled.plans.get(plan_id)
        minutes = self._batch_minutes.setdefault(plan_id, {})
        minutes_get = minutes.get
        no_quick: dict[str, dict[str, _Quick]] = {}
        home_directions = frozenset({"originating", ""})  # "" reads as originating

        def minute(key: str) -> tuple[Any, ...]:
            # (service -> group -> quick entry, seconds until the band may change, prefix -> group, prefix lengths)
            epoch = self._epoch(key + ":00Z")
            v = plan.version_at(epoch) if plan is not None else None
            if v is None or v.cdr_discounts:
                entry: tuple[Any, ...] = (no_quick, 0, None, ())
            else:
                band, until = v.clock.band_at(epoch)
                entry = (quick_table(compiled, v, band), until, v.index.groups_get, v.index.lengths)
            if len(minutes) > 500_000:
                minutes.clear()
            minutes[key] = entry
            return entry

        for row in rows:
            try:
                text = row[i_start]
                if len(text) != 20 or text[19] != "Z":
                    raise LookupError
                key = text[:16]
                by_service, until, groups_get, lengths = minutes_get(key) or minute(key)
                service = row[i_service]
                by_group = by_service[service]  # KeyError: no integer-priced rate for it in this band
                if row[i_visited] or row[i_direction] not in home_directions:
                    raise LookupError  # roaming or terminating: the zone and direction lookups of row_rater's path
                if service == "voice":
                    units = int(row[i_duration] or 0)
                    # `until` counts from the start of the minute; read the seconds only when it matters
                    if units > until - 59 and until - int(text[17:19]) < units:
                        raise LookupError  # crosses a band boundary: spans, row_rater's function
                elif service == "data":
                    units = int(row[i_up] or 0) + int(row[i_down] or 0)
                else:
                    units = int(row[i_events] or 1)
                if units < 0:
                    raise LookupError
                number = row[i_b]
                # longest prefix first; a length beyond the number probes the whole number, which is then
                # the longest prefix it can have, so no length check is needed
                for length in lengths:
                    group = groups_get(number[:length])
                    if group is not None:
                        break
                else:
                    group = ""
                rid, memo_get, quick = by_group[group]
                charge = memo_get(units)
                if charge is None:
                    charge = quick(units)
                add_status(RATED)
                add_charge(charge)
                add_id(rid)
            except (LookupError, ValueError):
                status, charge, rid = general(row)
                add_status(status)
                add_charge(charge)
                add_id(rid)
        return statuses, charges, ids

    def _split(self, v: CompiledVersion, direction: str, visited: str, number: str, minute_epoch: int, text: str,
               units: int) -> tuple[int, str] | None:
        """``(charge, "rate+rate")`` of a voice call crossing band boundaries, or None: the full rater's call.

        The same spans, parts and arithmetic as ``Rater._price`` (spans merged
        when band and rate repeat, increments on one grid from the call start,
        connect fee, minimum and maximum of the first span's rate, one rounding
        with its mode) for stepped rates rounded per call, without bundles; the
        exact total is one integer numerator over the lcm of the parts' ``per``.
        """
        # the full rater rejects a start time that is not a real instant: price only well-formed ones here
        hh, mm, ss = text[11:13], text[14:16], text[17:19]
        digits = hh + mm + ss
        if not (text[13] == text[16] == ":" and digits.isascii() and digits.isdigit() and hh < "24" and mm < "60" and ss < "60"):
            return None
        epoch = minute_epoch + int(ss)
        zone = self.compiled.zone_for(visited) if visited else "home"
        if not zone:
            return None
        group = v.index.lookup(number)[0]
        table_get = v.table.get
        band, until = v.clock.band_at(epoch)
        rate = table_get(("voice", direction, zone, group, band))
        if rate is None or not _splits_exactly(rate) or until >= units:
            return None
        spans: list[tuple[int, str, CompiledRate]] = [(until, band, rate)]  # (end, band, rate)
        t = until
        while t < units:
            band, step = v.clock.band_at(epoch + t)
            rate = table_get(("voice", direction, zone, group, band))
            if rate is None or not _splits_exactly(rate):
                return None
            end = min(t + step, units)
            _end, last_band, last_rate = spans[-1]
            if last_band == band and last_rate is rate:
                spans[-1] = (end, band, rate)
            else:
                spans.append((end, band, rate))
            t = end
        parts: list[Part] = []
        t = 0
        last = len(spans) - 1
        for i, (end, _band, rate) in enumerate(spans):
            t = rate.model.parts(i, t, end if i < last else units, units, parts)
        den = lcm(*(p.per for p in parts)) if parts else 1
        total = sum(p.price_micros * p.units * (den // p.per) for p in parts)
        lead = spans[0][2]
        total += lead.connect_fee * den
        if total < lead.minimum_charge * den:
            total = lead.minimum_charge * den
        if lead.maximum_cost is not None and total > lead.maximum_cost * den:
            total = lead.maximum_cost * den
        r = lead.rounding
        return round_micros(total, den, r.mode, r.decimals), "+".join(rate.id for _end, _band, rate in spans)

    def _slow(self, row: list[str], plan_id: str) -> tuple[str, int, str]:
        self.fallbacks += 1
        try:
            cdr = from_row(dict(zip(self.header, row)))
        except CdrValueError as exc:
            return REJECTED, 0, f"rejected: {exc}"
        rated = self.rater.rate(cdr, plan_id)
        if rated.status is not RatingStatus.RATED:
            return rated.status.value, 0, rated.reason
        return RATED, rated.charge_micros, rated.spans[0].rate_id if len(rated.spans) == 1 else "+".join(s.rate_id for s in rated.spans)
