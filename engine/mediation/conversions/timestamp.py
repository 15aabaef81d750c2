"""Local wall-clock text in a declared format and zone, to ISO 8601 UTC."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import repeat
from operator import add, eq, itemgetter
from typing import Any, Sequence

from engine.mediation.conversions.base import MINUTE_SECOND, SOURCE_ZONE, UTC, CompileContext, Conversion, Convert, check_zone, zone_of
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem

try:
    from engine.mediation._csvblock import timestamp_column as _c_column
except ImportError:  # pragma: no cover - a build without a C compiler
    _c_column = None


class Timestamp(Conversion):
    """Local wall-clock text in a declared format and zone, to UTC.

    The common ``%Y-%m-%d %H:%M:%S`` / ``%Y-%m-%dT%H:%M:%S`` forms take a fast path that
    caches the UTC offset per local hour (a switch writes many CDRs per hour); any other
    format goes through ``strptime``.  In the repeated hour when clocks fall back, the
    first occurrence is taken (``fold=0``): a CSV row does not say which one it was.
    ``zone: source`` reads the times in the zone of the file's source.
    """

    kind = "timestamp"
    produces = "time"
    _FAST = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")

    def __init__(self, format: str = "%Y-%m-%d %H:%M:%S", zone: str = "UTC") -> None:
        self.format = format
        self.zone = zone

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> Conversion:
        fmt = spec.optional("format", str, "%Y-%m-%d %H:%M:%S")
        if "%" not in fmt:
            problems.append(Problem.at(spec.node.mark_of("format"), "layout.bad-format", f"{where}: format needs strftime directives like %Y"))
        return cls(fmt, check_zone(spec, where, problems))

    def compile(self, ctx: CompileContext) -> Convert:
        zone = zone_of(ctx.zone if self.zone == SOURCE_ZONE else self.zone)
        if self.format in self._FAST:
            return _fast_timestamp(zone, self.format[8])
        fmt = self.format

        def slow(text: str) -> str:
            try:
                local = datetime.strptime(text, fmt)
            except ValueError:
                raise ConversionError("value.bad-timestamp", f"{text[:40]!r} does not match {fmt!r}") from None
            if local.tzinfo is None:
                local = local.replace(tzinfo=zone)
            return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return slow


def _fast_timestamp(zone: Any, separator: str) -> Convert:
    hours: dict[str, str] = {}   # local "YYYY-MM-DD HH" -> UTC "YYYY-MM-DDTHH:" when the offset is whole hours
    valid_ms = MINUTE_SECOND

    memo: dict[str, str] = {}   # whole values: a switch writes many CDRs per second

    def convert(text: str) -> str:
        out = memo.get(text)
        if out is not None:
            return out
        if len(text) == 19 and text[13] == ":" and text[10] == separator:
            prefix = hours.get(text[:13])
            if prefix is not None and text[14:] in valid_ms:
                out = prefix + text[14:] + "Z"
            else:
                out = _slow_convert(text, zone, separator, hours)
        else:
            out = _slow_convert(text, zone, separator, hours)
        if len(memo) >= 16384:
            memo.clear()
        memo[text] = out
        return out

    hour_of, rest_of, colon_at = itemgetter(slice(13)), itemgetter(slice(14, None)), itemgetter(13)

    def column(texts: Sequence[str]) -> list[str] | None:
        """A whole column from the per-hour prefixes already known, in C-level maps; ``None`` when a
        value is not of that simple kind (the per-value converter then decides, and learns its hour).
        The C function (``_csvblock.timestamp_column``) answers the plain columns in one pass, or declines."""
        if _c_column is not None and type(texts) is list:
            got = _c_column(texts, hours)
            if got is not None:
                return got
        try:
            if not all(map(eq, map(colon_at, texts), repeat(":"))):
                return None
        except IndexError:   # a value shorter than 14 characters
            return None
        rests = list(map(rest_of, texts))
        if not all(map(valid_ms.__contains__, rests)):   # "MM:SS" valid: the value is exactly 19 characters
            return None
        prefixes = list(map(hours.get, map(hour_of, texts)))
        if None in prefixes:
            return None
        return list(map(add, prefixes, map(add, rests, repeat("Z"))))

    convert.memo = memo  # type: ignore[attr-defined]
    convert.column = column  # type: ignore[attr-defined]
    return convert


def _slow_convert(text: str, zone: Any, separator: str, hours: dict[str, str]) -> str:
    if len(text) != 19 or text[10] != separator:
        raise ConversionError("value.bad-timestamp", f"{text[:40]!r} is not YYYY-MM-DD{separator}HH:MM:SS")
    try:
        local = datetime.fromisoformat(text if text[17:] != "60" else text[:17] + "59")
    except ValueError:
        raise ConversionError("value.bad-timestamp", f"{text[:40]!r} is not a valid date and time") from None
    aware = local.replace(tzinfo=zone)
    offset = aware.utcoffset() or timedelta(0)
    utc = aware.astimezone(UTC)
    if offset.total_seconds() % 3600 == 0 and len(hours) < 100_000:
        hours[text[:13]] = utc.strftime("%Y-%m-%dT%H:")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
