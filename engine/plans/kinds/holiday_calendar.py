"""``kind: holiday_calendar`` — public holidays (HOL_...): fixed dates and yearly month-day dates."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from engine.plans.kinds.common import Ctx
from engine.plans.model import HolidayCalendar
from engine.yamlio import Fields, MarkedList, MarkedMap

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> HolidayCalendar:
    f = Fields(node, "holiday_calendar", ctx.problems)
    f.optional("kind", str)
    cid = ctx.ident(f, "holiday_calendar")
    name = f.optional("name", str, default=cid)
    f.optional("description", str)
    raw_dates = f.optional("dates", list, default=[])
    raw_recurring = f.optional("recurring", list, default=[])
    f.done()
    dates: list[date] = []
    for i, item in enumerate(raw_dates):
        mark = raw_dates.mark_of(i) if isinstance(raw_dates, MarkedList) else node.mark
        if isinstance(item, str):
            try:
                item = date.fromisoformat(item)
            except ValueError:
                pass
        if not isinstance(item, date):
            ctx.problem(mark, "value.date", f"{cid}: dates[{i}] {item!r} is not a date (YYYY-MM-DD)")
            continue
        if item in dates:
            ctx.problem(mark, "calendars.duplicate-date", f"{cid}: {item.isoformat()} listed twice")
            continue
        dates.append(item)
    recurring: list[tuple[int, int]] = []
    for i, item in enumerate(raw_recurring):
        mark = raw_recurring.mark_of(i) if isinstance(raw_recurring, MarkedList) else node.mark
        m = _MONTH_DAY.match(item) if isinstance(item, str) else None
        if not m or not (1 <= int(m.group(1)) <= 12) or not (1 <= int(m.group(2)) <= _DAYS_IN_MONTH[int(m.group(1)) - 1]):
            ctx.problem(mark, "value.date", f"{cid}: recurring[{i}] {item!r} is not a month-day (MM-DD, quoted)")
            continue
        md = (int(m.group(1)), int(m.group(2)))
        if md in recurring:
            ctx.problem(mark, "calendars.duplicate-date", f"{cid}: {item} listed twice")
            continue
        recurring.append(md)
    if not dates and not recurring:
        ctx.problem(node.mark, "calendars.empty", f"{cid}: a holiday calendar needs dates or recurring month-days")
    return HolidayCalendar(cid, name, tuple(sorted(dates)), tuple(sorted(recurring)), node.mark)
