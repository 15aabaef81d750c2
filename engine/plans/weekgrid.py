"""Resolve a time band set into who wins each second of each kind of day (as runs, not per second).

There are 14 kinds of day: Monday..Sunday, each either an ordinary day or a
holiday.  On a holiday, holiday bands compete with the ordinary bands by
weight (so a holiday band needs a higher weight to take over the day).  The
validator uses this to find gaps, ties and bands that never win; the compiler
turns it into lookup tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.plans.model import WEEKDAYS, Band, TimeBandSet

DAY = 86400
DAY_KINDS: tuple[tuple[int, bool], ...] = tuple((d, h) for h in (False, True) for d in range(7))


@dataclass(frozen=True)
class Segment:
    start: int                  # second of day, inclusive
    end: int                    # second of day, exclusive
    winner: str | None          # band id, None for a gap
    tied: tuple[str, ...] = ()  # bands sharing the top weight (ambiguous) — winner is the first


def day_segments(band_set: TimeBandSet, day: int, holiday: bool) -> list[Segment]:
    windows: list[tuple[int, int, Band]] = []
    for band in band_set.bands:
        if band.holidays and not holiday:
            continue
        for w in band.windows:
            if day in w.days:
                windows.append((w.start_second, w.end_second, band))
    cuts = sorted({0, DAY, *(s for s, _, _ in windows), *(e for _, e, _ in windows)})
    out: list[Segment] = []
    for start, end in zip(cuts, cuts[1:]):
        covering = [b for s, e, b in windows if s <= start and end <= e]
        if not covering:
            seg = Segment(start, end, None)
        else:
            top = max(b.weight for b in covering)
            best = list(dict.fromkeys(b.id for b in covering if b.weight == top))
            seg = Segment(start, end, best[0], tuple(best) if len(best) > 1 else ())
        if out and out[-1].winner == seg.winner and out[-1].tied == seg.tied and out[-1].end == seg.start:
            out[-1] = Segment(out[-1].start, seg.end, seg.winner, seg.tied)
        else:
            out.append(seg)
    return out


def clock(second: int) -> str:
    text = f"{second // 3600:02d}:{second // 60 % 60:02d}"
    return text + f":{second % 60:02d}" if second % 60 else text


def describe(day: int, holiday: bool, seg: Segment) -> str:
    return f"{WEEKDAYS[day]}{' (holiday)' if holiday else ''} {clock(seg.start)}-{clock(seg.end)}"


def days_text(days: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> ``mon-fri``; [5] -> ``sat``; [0, 2] -> ``mon,wed``."""
    days = sorted(set(days))
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{WEEKDAYS[days[0]]}-{WEEKDAYS[days[-1]]}"
    return ",".join(WEEKDAYS[d] for d in days)
