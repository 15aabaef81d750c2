"""Which time band is in force at an instant, and where a call changes band: computed, never walked.

Built from the IR's resolved day tables (14 kinds of day: weekday x holiday).
An ordinary week is folded into one sorted list of the instants (seconds
since Monday 00:00 local) where the band changes, so "when does this band
end?" is one bisection, whatever the call's length.  Three things interrupt an
ordinary week and are also found by bisection: holiday dates (explicit ones
sorted, recurring ones computed for the year), and UTC-offset changes (each
year's transitions are located once by sampling the zone daily and bisecting
to the second).  A call is therefore split in as many steps as it has band
changes, holidays and clock changes: a 48-hour call in one band costs the
same as a 1-second one (issue: rating cost independent of duration).
"""

from __future__ import annotations

import time
from bisect import bisect_right, insort
from datetime import date, datetime, timezone
from typing import Any, Callable, TypeVar
from zoneinfo import ZoneInfo

from engine.plans.ir import day_name, parse_day_name

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY = 86400
WEEK = 7 * DAY
NEVER = 1 << 62   # "no change ahead" (an instant later than any CDR)


_T = TypeVar("_T")


def _cached(cache: dict[int, _T], key: int, find: Callable[[int], _T]) -> _T:
    """``cache[key]``, found on first use (a pure function of the key); emptied when it holds 100,000."""
    hit = cache.get(key)
    if hit is None:
        if len(cache) > 100_000:
            cache.clear()
        hit = cache[key] = find(key)
    return hit


class BandClock:
    __slots__ = ("id", "tz", "_tables", "_week_starts", "_week_bands", "_holiday_days", "_recurring", "_holiday_cache",
                 "_next_cache", "_years", "_has_holidays", "_stretch_ends", "_stretches")

    def __init__(self, band_set_id: str, ir: dict[str, Any]) -> None:
        self.id = band_set_id
        self.tz = ZoneInfo(ir["timezone"])
        self._holiday_days = sorted(date.fromisoformat(d).toordinal() - _EPOCH_ORDINAL for d in ir["holidays"]["dates"])
        self._recurring = sorted({(int(md[:2]), int(md[3:])) for md in ir["holidays"]["recurring"]})
        self._has_holidays = bool(self._holiday_days or self._recurring)
        self._holiday_cache: dict[int, bool] = {}
        self._next_cache: dict[int, int] = {}
        # the stretches found so far, by where they end: (the earliest instant asked within it, its band).  Every
        # instant of a stretch has the same answer, so the minutes of a file (as many as 44,640 a month) and the
        # calls crossing one change ask for a few hundred stretches, not one piece per instant
        self._stretch_ends: list[int] = []
        self._stretches: dict[int, tuple[int, str]] = {}
        self._years: dict[int, tuple[list[int], list[int]]] = {}
        # per kind of day: (segment starts, bands, segment ends) in seconds of day; the IR's tables are in minutes
        # unless the band set changes band on a second that is not a whole minute
        unit = 1 if ir.get("resolution") == "second" else 60
        self._tables: dict[tuple[int, bool], tuple[list[int], list[str], list[int]]] = {}
        for name, segments in ir["days"].items():
            self._tables[parse_day_name(name)] = ([s * unit for s, _e, _w in segments], [w for _s, _e, w in segments],
                                                  [e * unit for _s, e, _w in segments])
        # the ordinary week as maximal runs of one band: starts (seconds since Monday 00:00) and bands
        runs: list[tuple[int, str]] = []
        for weekday in range(7):
            for start, _end, winner in ir["days"][day_name(weekday, False)]:
                if not runs or runs[-1][1] != winner:
                    runs.append((weekday * DAY + start * unit, winner))
        if len(runs) > 1 and runs[-1][1] == runs[0][1]:
            runs.pop(0)  # Sunday night runs on into Monday morning: one run across the week's wrap
        self._week_starts = [s for s, _ in runs]
        self._week_bands = [b for _, b in runs]

    # -- UTC offsets -----------------------------------------------------------------------------
    def _year(self, year: int) -> tuple[list[int], list[int]]:
        """(transition instants, offsets) of a UTC year: offsets[i] holds from transitions[i-1] (or the year's start)."""
        found = self._years.get(year)
        if found is None:
            start = int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp())
            end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp())
            offsets = [self._probe(start)]
            transitions: list[int] = []
            t = start
            while t < end:
                nxt = min(t + DAY, end)
                if self._probe(nxt) != offsets[-1]:
                    # bisect the day to the second where the offset changes (zones change at most once a day)
                    lo, hi = t, nxt
                    while hi - lo > 1:
                        mid = (lo + hi) // 2
                        if self._probe(mid) == offsets[-1]:
                            lo = mid
                        else:
                            hi = mid
                    transitions.append(hi)
                    offsets.append(self._probe(hi))
                t = nxt
            found = self._years[year] = (transitions, offsets)
        return found

    def _probe(self, epoch: int) -> int:
        delta = datetime.fromtimestamp(epoch, timezone.utc).astimezone(self.tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    def offset(self, epoch: int) -> int:
        """Seconds to add to UTC for local time at ``epoch``."""
        transitions, offsets = self._year(time.gmtime(epoch).tm_year)
        return offsets[bisect_right(transitions, epoch)]

    def _next_offset_change(self, epoch: int) -> int:
        year = time.gmtime(epoch).tm_year
        for y in (year, year + 1):
            transitions, _ = self._year(y)
            i = bisect_right(transitions, epoch)
            if i < len(transitions):
                return transitions[i]
        return NEVER

    # -- holidays ----------------------------------------------------------------------------------
    def _is_holiday(self, day_number: int) -> bool:
        if not self._has_holidays:
            return False
        hit = self._holiday_cache.get(day_number)
        if hit is None:
            d = date.fromordinal(day_number + _EPOCH_ORDINAL)
            i = bisect_right(self._holiday_days, day_number)
            hit = (i > 0 and self._holiday_days[i - 1] == day_number) or (d.month, d.day) in self._recurring
            if len(self._holiday_cache) > 100_000:
                self._holiday_cache.clear()
            self._holiday_cache[day_number] = hit
        return hit

    def _next_holiday(self, day_number: int) -> int:
        """The first holiday on or after ``day_number`` (a local day number), or NEVER."""
        return _cached(self._next_cache, day_number, self._find_next_holiday)

    def _find_next_holiday(self, day_number: int) -> int:
        best = NEVER
        i = bisect_right(self._holiday_days, day_number - 1)
        if i < len(self._holiday_days):
            best = self._holiday_days[i]
        if self._recurring:
            year = date.fromordinal(day_number + _EPOCH_ORDINAL).year
            for y in (year, year + 1):
                for month, day in self._recurring:
                    try:
                        n = date(y, month, day).toordinal() - _EPOCH_ORDINAL
                    except ValueError:  # 29 February of a common year
                        continue
                    if day_number <= n < best:
                        best = n
        return best

    # -- bands -------------------------------------------------------------------------------------
    def _piece(self, epoch: int) -> tuple[str, int]:
        """The band at ``epoch`` and the end (UTC) of the stretch where nothing can change it: a band change
        of the ordinary week or of a holiday's table, the start or end of a holiday, or a UTC-offset change."""
        ends = self._stretch_ends
        i = bisect_right(ends, epoch)
        if i < len(ends):
            end = ends[i]
            start, band = self._stretches[end]
            if start <= epoch:
                return band, end
        band, end = self._find_piece(epoch)
        known = self._stretches.get(end)
        if known is None:
            if len(ends) > 100_000:
                ends.clear()
                self._stretches.clear()
            insort(ends, end)
            self._stretches[end] = (epoch, band)
        elif epoch < known[0]:
            self._stretches[end] = (epoch, band)   # [epoch, end) is one stretch, as [known start, end) was
        return band, end

    def _find_piece(self, epoch: int) -> tuple[str, int]:
        off = self.offset(epoch)
        local = epoch + off
        day, sod = divmod(local, DAY)
        if self._is_holiday(day):
            starts, bands, ends = self._tables.get(((day + 3) % 7, True)) or self._tables[((day + 3) % 7, False)]
            k = bisect_right(starts, sod) - 1
            band, end_local = bands[k], day * DAY + ends[k]
        else:
            into_week = ((day + 3) % 7) * DAY + sod  # 1970-01-01 was a Thursday
            starts = self._week_starts
            i = bisect_right(starts, into_week)
            band = self._week_bands[i - 1]  # i == 0: before Monday's first start, i.e. the wrapped last run
            if len(starts) == 1:
                end_local = NEVER
            else:
                nxt = starts[i] if i < len(starts) else starts[0] + WEEK
                end_local = local + nxt - into_week
            if self._has_holidays:
                end_local = min(end_local, self._next_holiday(day + 1) * DAY)
        end = epoch + (end_local - local) if end_local < NEVER else NEVER
        return band, min(end, self._next_offset_change(epoch))

    def run(self, epoch: int, limit: int) -> tuple[str, int]:
        """``(band at epoch, first instant after it where the band differs)``; the search stops at ``limit``
        (the returned end is then ``>= limit``)."""
        band, end = self._piece(epoch)
        while end < limit:
            nxt, nxt_end = self._piece(end)
            if nxt != band:
                break
            end = nxt_end
        return band, end

    def band_at(self, epoch: int, horizon: int = 8 * DAY) -> tuple[str, int]:
        """``(band id, seconds until the band changes)`` at UTC ``epoch``; the seconds are capped at ``horizon``."""
        band, end = self.run(epoch, epoch + horizon)
        return band, min(end - epoch, horizon)

    def spans(self, epoch: int, duration: int) -> list[tuple[int, int, str]]:
        """The call ``[epoch, epoch + duration)`` cut where the band changes: ``(start, end, band)`` offsets in seconds."""
        out: list[tuple[int, int, str]] = []
        t, stop = epoch, epoch + duration
        while t < stop:
            band, end = self.run(t, stop)
            out.append((t - epoch, min(end, stop) - epoch, band))
            t = end
        return out

    def local_day(self, epoch: int) -> date:
        return date.fromordinal((epoch + self.offset(epoch)) // DAY + _EPOCH_ORDINAL)

    def local_day_until(self, epoch: int) -> tuple[date, int]:
        """(:meth:`local_day` at ``epoch``, the first instant after it where the local day or the UTC offset may
        differ): every epoch in ``[epoch, until)`` has the same local day, so a run of CDRs asks once."""
        offset = self.offset(epoch)
        days = (epoch + offset) // DAY
        return date.fromordinal(days + _EPOCH_ORDINAL), min((days + 1) * DAY - offset, self._next_offset_change(epoch))

    def local_time(self, epoch: int) -> str:
        local = epoch + self.offset(epoch)
        return datetime.fromtimestamp(local, timezone.utc).strftime("%a %Y-%m-%d %H:%M:%S")

class Stretches:
    """Answers that each hold over a stretch of time ``[first instant asked, end)``, kept by where the stretch ends:
    :meth:`get` answers any instant inside a stretch found before (``MISSING`` otherwise), :meth:`put` keeps one.  So
    a file with a row in every minute computes an answer a few times a day (a band run, a local day, a plan version)
    rather than once a minute.  Bounded: past ``limit`` stretches it starts again."""

    MISSING: Any = object()

    def __init__(self, limit: int = 10_000) -> None:
        self._ends: list[int] = []
        self._found: dict[int, tuple[int, Any]] = {}
        self._limit = limit

    def get(self, epoch: int) -> Any:
        ends = self._ends
        k = bisect_right(ends, epoch)
        if k < len(ends):
            start, answer = self._found[ends[k]]
            if start <= epoch:
                return answer
        return self.MISSING

    def find(self, epoch: int, compute: Callable[[], tuple[int, Any]]) -> Any:
        """The answer at ``epoch``: a stretch's found before, else ``compute()``'s ``(end, answer)``, kept."""
        answer = self.get(epoch)
        if answer is self.MISSING:
            end, answer = compute()
            self.put(epoch, end, answer)
        return answer

    def put(self, epoch: int, end: int, answer: Any) -> None:
        """``answer`` holds over ``[epoch, end)``."""
        if len(self._ends) > self._limit:
            self._ends.clear()
            self._found.clear()
        known = self._found.get(end)
        if known is None:
            insort(self._ends, end)
            self._found[end] = (epoch, answer)
        elif epoch < known[0]:
            self._found[end] = (epoch, answer)   # [epoch, end) is one stretch, as [known start, end) was
