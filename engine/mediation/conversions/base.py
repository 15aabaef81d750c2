"""The shared base of conversion kinds: what a kind is, and helpers several kinds use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any, Callable, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.mediation.numbering_plan import NumberingPlan
from engine.mediation.problems import ConversionError
from engine.yamlio import Fields, Problem

Convert = Callable[[str], Any]

UTC = timezone.utc
# every valid "MM:SS"; a leap second (:60) takes the slow path and is folded into :59
MS_TEXT = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
MINUTE_SECOND = frozenset(MS_TEXT)


@dataclass(frozen=True)
class CompileContext:
    """What a conversion may need beyond its own options: where the file's source is."""

    numbering: NumberingPlan
    zone: str = "UTC"          # the source's time zone, for ``zone: source``


class Conversion:
    """Base of every conversion kind.  ``produces`` is ``text``, ``int`` or ``time``."""

    kind: ClassVar[str]
    produces: ClassVar[str]

    @classmethod
    def parse(cls, spec: Fields, where: str, problems: list[Problem]) -> "Conversion":
        return cls()

    def compile(self, ctx: CompileContext) -> Convert:
        """The converter.  It may carry a ``memo`` dict (raw text -> result) that the
        generated mapper probes before calling it; the converter keeps it filled and bounded."""
        raise NotImplementedError

    def inline(self) -> tuple[str, str] | None:
        """Optional (expression, failure test) source templates for the generated mapper.

        ``{v}`` stands for the raw value, ``{t}`` for the converted one.  The expression
        may raise ValueError; on any failure the mapper calls the real converter to
        report the proper code, so both must agree on what is valid.
        """
        return None


MAX_INTEGER = 2**63 - 1   # engine.cdr.MAX_INTEGER: what the store's integer columns hold


def to_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConversionError("value.not-integer", f"not an integer: {text[:40]!r}") from None
    return in_range(value, text)


def in_range(value: int, text: str) -> int:
    """``value`` unless it is beyond what a CDR can hold (``value.out-of-range``)."""
    if value > MAX_INTEGER or value < -MAX_INTEGER:
        raise ConversionError("value.out-of-range", f"{text[:24]!r}... is out of range (at most {MAX_INTEGER})")
    return value


def to_fraction(text: str) -> tuple[int, int]:
    """A non-negative decimal such as ``2.008`` as (numerator, denominator), exactly."""
    whole, dot, frac = text.partition(".")
    if not dot:
        return to_int(text), 1
    if not (whole.isdigit() or whole == "") or not frac.isdigit() or not (whole + frac).isascii() or len(frac) > 9:
        raise ConversionError("value.not-a-number", f"not a decimal number: {text[:40]!r}")
    scale = 10 ** len(frac)
    return in_range(int(whole or "0"), text) * scale + int(frac), scale


def zone_of(name: str) -> Any:
    if name.upper() == "UTC":
        return UTC
    return ZoneInfo(name)


SOURCE_ZONE = "source"   # ``zone: source``: the local time of the file's source (rules/mediation/sources.yaml)


def check_zone(spec: Fields, where: str, problems: list[Problem]) -> str:
    zone = spec.optional("zone", str, "UTC")
    if zone == SOURCE_ZONE:
        return zone
    try:
        zone_of(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem.at(spec.node.mark_of("zone"), "layout.bad-zone", f"{where}: unknown time zone {zone!r}"))
        return "UTC"
    return zone
