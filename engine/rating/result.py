"""What rating returns: the rated CDR, its spans, bundle use and discount lines, and bundle counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator, Mapping

from engine.money import format_amount


class RatingStatus(str, Enum):
    RATED = "rated"        # charged (possibly 0 by a bundle or a free rate, always with the reason in spans)
    UNRATED = "unrated"    # valid CDR but the plan cannot price it (reason says why); never a silent zero
    REJECTED = "rejected"  # impossible values (negative duration, unknown service ...)


class UnratedReason(str, Enum):
    NO_PLAN = "no-plan"
    NO_VERSION = "no-version"
    NO_ZONE = "no-zone"
    NO_RATE = "no-rate"
    NO_BAND = "no-band"
    RAP_RETURN = "rap-return"   # a returned call event (RAP): kept on record, never charged


@dataclass(frozen=True, slots=True)
class RatedSpan:
    """A slice of the event priced by one rate in one band (offsets in the event's units)."""

    start: int            # first unit of the slice (seconds since answer for voice)
    end: int              # end of the slice (exclusive), before rounding to increments
    band: str
    rate_id: str
    billed_units: int     # units charged after increments (includes units covered by bundles)
    bundle_units: int     # of which covered by bundles
    charge_micros: int    # this span's money: rounded per span when the rate says so, else the exact amount to the micro (half-even)

    def as_dict(self, currency: str = "") -> dict[str, Any]:
        return {
            "start": self.start, "end": self.end, "band": self.band, "rate": self.rate_id,
            "billed_units": self.billed_units, "bundle_units": self.bundle_units, "charge": format_amount(self.charge_micros, currency),
        }


@dataclass(frozen=True, slots=True)
class BundleUse:
    bundle_id: str
    units: int

    def as_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle_id, "units": self.units}


@dataclass(frozen=True, slots=True)
class DiscountLine:
    discount_id: str
    amount_micros: int    # negative: money off; positive: a commitment shortfall charged
    description: str = ""
    service: str = ""

    def as_dict(self, currency: str = "") -> dict[str, Any]:
        return {"discount": self.discount_id, "amount": format_amount(self.amount_micros, currency)}


class BundleState(Mapping[str, int]):
    """Remaining units per active bundle of one subscriber; immutable (rating returns a new one)."""

    __slots__ = ("_remaining",)

    def __init__(self, remaining: Mapping[str, int] | None = None) -> None:
        self._remaining = dict(remaining or {})
        for k, v in self._remaining.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"bundle {k}: remaining units must be a non-negative integer")

    def __getitem__(self, key: str) -> int:
        return self._remaining[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._remaining)

    def __len__(self) -> int:
        return len(self._remaining)

    def consume(self, uses: list[BundleUse]) -> "BundleState":
        if not uses:
            return self
        out = dict(self._remaining)
        for use in uses:
            out[use.bundle_id] = out[use.bundle_id] - use.units
        return BundleState(out)

    def __repr__(self) -> str:
        return f"BundleState({self._remaining!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class RatedCdr:
    cdr_id: str
    status: RatingStatus
    reason: str = ""                    # why unrated/rejected (stable code first: "no-rate: ...")
    charge_micros: int = 0              # what the customer pays for this CDR, after CDR-level discounts
    currency: str = ""
    plan_id: str = ""
    plan_version: int = 0
    service: str = ""
    destination: str = ""               # destination group id ("" = none matched)
    prefix: str = ""
    zone: str = ""
    units: int = 0                      # raw usage: seconds, events or bytes
    gross_micros: int = 0               # before discounts
    spans: tuple[RatedSpan, ...] = ()
    bundle_usage: tuple[BundleUse, ...] = ()
    discounts: tuple[DiscountLine, ...] = ()
    # the explanation, or how to write it: built only when someone reads `explanation`
    why: str | Callable[[], str] = field(default="", compare=False, repr=False)
    bundle_state: BundleState | None = field(default=None, compare=False)
    # marks a rated CDR carries: "max-cost-disconnect" (the call should have been cut at its rate's maximum cost)
    flags: tuple[str, ...] = ()

    @property
    def rated(self) -> bool:
        return self.status is RatingStatus.RATED

    @property
    def explanation(self) -> str:
        """Why this charge, in words (rate, spans, bundles, fees, rounding); written on first use."""
        return self.why if isinstance(self.why, str) else self.why()

    def as_dict(self) -> dict[str, Any]:
        """The stable form used by golden files and the API (no explanation text: it may be reworded)."""
        out: dict[str, Any] = {"cdr_id": self.cdr_id, "status": self.status.value}
        if self.status is not RatingStatus.RATED:
            out["reason"] = self.reason
            if self.plan_id:
                out["plan"] = self.plan_id
            return out
        out.update({
            "charge": format_amount(self.charge_micros, self.currency),
            "charge_micros": self.charge_micros,
            "currency": self.currency,
            "plan": self.plan_id,
            "version": self.plan_version,
            "service": self.service,
            "destination": self.destination,
            "prefix": self.prefix,
            "zone": self.zone,
            "units": self.units,
            "spans": [s.as_dict(self.currency) for s in self.spans],
        })
        if self.flags:
            out["flags"] = list(self.flags)
        if self.bundle_usage:
            out["bundles"] = [b.as_dict() for b in self.bundle_usage]
        if self.discounts:
            out["gross"] = format_amount(self.gross_micros, self.currency)
            out["discounts"] = [d.as_dict(self.currency) for d in self.discounts]
        return out
