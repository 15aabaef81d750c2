"""Bulk rating straight from CSV rows: the hot path of re-rating runs and replay-style throughput.

:class:`BulkRater` rates one normalised-CDR row (a list of strings, as
``csv.reader`` yields it) without building a :class:`MediatedCdr`: timestamp
parsing is cached per date, the plan version, band clock and prefix index are
looked up once per row, and a one-span call without bundles is priced by the
rate's precompiled integer function.  Anything else (a call crossing a band
boundary, bad values, unusual timestamps) falls back to the full
:class:`~engine.rating.rater.Rater`, so results are always the same as the
full path's; a differential test checks that.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Sequence

from engine.cdr import COLUMNS, CdrValueError, from_row
from engine.rating.compiled import CompiledPlans, CompiledVersion
from engine.rating.rater import Rater
from engine.rating.result import RatingStatus

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
RATED, UNRATED, REJECTED = RatingStatus.RATED.value, RatingStatus.UNRATED.value, RatingStatus.REJECTED.value
_SERVICES = frozenset({"voice", "sms", "mms", "data", "supplementary"})


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
        self.fallbacks = 0

    def _epoch(self, text: str) -> int:
        # the normalised format writes "YYYY-MM-DDTHH:MM:SSZ"; anything else goes the slow way
        if len(text) != 20 or text[10] != "T" or text[19] != "Z":
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
                        raise LookupError  # crosses a band boundary: spans, the full rater
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
