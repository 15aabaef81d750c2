"""Which time band is in force at an instant, and for how long.

Built from the IR's resolved day tables (14 kinds of day: weekday x holiday).
A lookup converts UTC epoch seconds to local time with an offset cached per
15 minutes of UTC (every current time-zone transition falls on a quarter
hour), finds the kind of day (cached per local date) and reads the band from a
per-minute table.  It also says how many seconds remain until the band may
change (end of the band's segment or of the local day, or a UTC-offset
change), which is where a call is split.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from engine.plans.model import WEEKDAYS

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_QUARTER = 900


class BandClock:
    __slots__ = ("id", "tz", "_offsets", "_day_cache", "_tables", "_holiday_dates", "_recurring")

    def __init__(self, band_set_id: str, ir: dict[str, Any]) -> None:
        self.id = band_set_id
        self.tz = ZoneInfo(ir["timezone"])
        self._offsets: dict[int, int] = {}
        self._day_cache: dict[int, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self._holiday_dates = {date.fromisoformat(d).toordinal() - _EPOCH_ORDINAL for d in ir["holidays"]["dates"]}
        self._recurring = {(int(md[:2]), int(md[3:])) for md in ir["holidays"]["recurring"]}
        # per kind of day: (band per minute, end of that minute's segment in seconds of day)
        self._tables: dict[tuple[int, bool], tuple[tuple[str, ...], tuple[int, ...]]] = {}
        for name, segments in ir["days"].items():
            day = WEEKDAYS.index(name[:3])
            band = [""] * 1440
            seg_end = [86400] * 1440
            for start, end, winner in segments:
                for minute in range(start, end):
                    band[minute] = winner
                    seg_end[minute] = end * 60
            self._tables[(day, name.endswith("_holiday"))] = (tuple(band), tuple(seg_end))

    def offset(self, epoch: int) -> int:
        """Seconds to add to UTC for local time (cached per quarter hour)."""
        q = epoch // _QUARTER
        off = self._offsets.get(q)
        if off is None:
            delta = datetime.fromtimestamp(q * _QUARTER, timezone.utc).astimezone(self.tz).utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[q] = off
        return off

    def _day(self, day_number: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        table = self._day_cache.get(day_number)
        if table is None:
            weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday
            holiday = False
            if self._holiday_dates or self._recurring:
                d = date.fromordinal(day_number + _EPOCH_ORDINAL)
                holiday = day_number in self._holiday_dates or (d.month, d.day) in self._recurring
            table = self._tables.get((weekday, holiday)) or self._tables[(weekday, False)]
            self._day_cache[day_number] = table
        return table

    def band_at(self, epoch: int) -> tuple[str, int]:
        """``(band id, seconds until the band may change)`` at UTC ``epoch`` seconds."""
        off = self.offset(epoch)
        local = epoch + off
        day_number, sod = divmod(local, 86400)
        bands, ends = self._day(day_number)
        minute = sod // 60
        until = ends[minute] - sod
        # a UTC-offset change (DST) inside the segment: stop at the quarter where it happens
        if self.offset(epoch + until - 1) != off:
            q = epoch // _QUARTER + 1
            while self.offset(q * _QUARTER) == off:
                q += 1
            until = q * _QUARTER - epoch
        return bands[minute], until

    def local_time(self, epoch: int) -> str:
        local = epoch + self.offset(epoch)
        return datetime.fromtimestamp(local, timezone.utc).strftime("%a %Y-%m-%d %H:%M:%S")
