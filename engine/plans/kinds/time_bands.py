"""``kind: time_bands`` — a set of named bands covering the whole week (TB_...).

A band is one or more windows (days + ``from``/``to`` clock times ``HH:MM`` or
``HH:MM:SS``, ``to`` may be ``"24:00"``); a window never wraps past midnight, write two windows.  A
band with ``holidays: true`` applies on the dates of the set's holiday
calendars.  When bands overlap, the higher ``weight`` wins; equal weights on
the same minute are ambiguous and rejected.  Times are local to ``timezone``.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.plans.kinds.common import Ctx, parse_clock
from engine.plans.model import WEEKDAYS, Band, TimeBandSet, Window
from engine.yamlio import Fields, Mark, MarkedList, MarkedMap

DAY_GROUPS = {
    "all": tuple(range(7)),
    "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
}


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> TimeBandSet:
    f = Fields(node, "time_bands", ctx.problems)
    f.optional("kind", str)
    sid = ctx.ident(f, "time_bands")
    name = f.optional("name", str, default=sid)
    f.optional("description", str)
    tz = f.required("timezone", str) or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.problem(node.mark_of("timezone"), "value.timezone", f"{sid}: {tz!r} is not an IANA time zone (e.g. Europe/Paris)")
        tz = "UTC"
    calendars, cal_marks = ctx.str_list(f, "holiday_calendars")
    raw_bands = f.required("bands", list) or []
    f.done()
    bands: list[Band] = []
    seen: dict[str, Mark] = {}
    for i, item in enumerate(raw_bands):
        fallback = raw_bands.mark_of(i) if isinstance(raw_bands, MarkedList) else node.mark
        band = _band(item, ctx, sid, fallback)
        if band is None:
            continue
        if band.id in seen:
            ctx.problem(band.mark, "id.duplicate", f"{sid}: band {band.id} defined twice (first at line {seen[band.id].line})")
            continue
        seen[band.id] = band.mark
        bands.append(band)
    if not bands and raw_bands is not None:
        ctx.problem(node.mark, "bands.empty", f"{sid}: a time band set needs at least one band")
    return TimeBandSet(sid, name, tz, tuple(calendars), tuple(bands), node.mark, tuple(cal_marks))


def _band(item: object, ctx: Ctx, sid: str, fallback: Mark) -> Band | None:
    f = Fields(item, "band", ctx.problems, fallback=fallback)
    if not f.ok:
        return None
    bid = ctx.local_id(f, "id", "band id")
    f.optional("name", str)
    holidays = bool(f.optional("holidays", bool, default=False))
    weight = ctx.integer(f, "weight", 0, lo=0, hi=1_000_000)
    raw_windows = f.optional("windows", list)
    windows: list[Window] = []
    if raw_windows is not None:
        for j, w in enumerate(raw_windows):
            wf = Fields(w, "window", ctx.problems, fallback=raw_windows.mark_of(j) if isinstance(raw_windows, MarkedList) else f.mark)
            if wf.ok:
                win = _window(wf, ctx, sid, bid, holidays)
                wf.done()
                if win:
                    windows.append(win)
        if any(k in f.node for k in ("days", "from", "to")):
            ctx.problem(f.mark, "bands.mixed-windows", f"{sid}.{bid}: write either windows or days/from/to, not both")
    else:
        win = _window(f, ctx, sid, bid, holidays)
        if win:
            windows.append(win)
    f.done()
    return Band(bid, tuple(windows), holidays, weight, f.mark)


def _window(f: Fields, ctx: Ctx, sid: str, bid: str, holidays: bool) -> Window | None:
    raw_days = f.optional("days", (str, list), default="all")
    days: set[int] = set()
    for d in [raw_days] if isinstance(raw_days, str) else raw_days:
        if isinstance(d, str) and d in DAY_GROUPS:
            days.update(DAY_GROUPS[d])
        elif isinstance(d, str) and d in WEEKDAYS:
            days.add(WEEKDAYS.index(d))
        else:
            ctx.problem(f.node.mark_of("days"), "value.enum", f"{sid}.{bid}: day {d!r} is not one of: {', '.join(WEEKDAYS)}, weekdays, weekend, all")
    start_raw = f.optional("from", (str, int), default="00:00")
    end_raw = f.optional("to", (str, int), default="24:00")
    start, end = parse_clock(start_raw), parse_clock(end_raw)
    ok = True
    for key, value, raw in (("from", start, start_raw), ("to", end, end_raw)):
        if value is None:
            ctx.problem(f.node.mark_of(key), "value.time", f"{sid}.{bid}: {key} {raw!r} is not a clock time HH:MM or HH:MM:SS (quote it)")
            ok = False
    if not ok or start is None or end is None:
        return None
    if start >= end:
        ctx.problem(f.node.mark_of("to"), "bands.empty-window", f"{sid}.{bid}: window {start_raw}-{end_raw} is empty; a window cannot wrap midnight, write two")
        return None
    return Window(tuple(sorted(days)), start, end)
