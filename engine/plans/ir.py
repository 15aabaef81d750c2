"""The plan intermediate form (IR): the contract between the compiler and the evaluators.

:mod:`engine.plans.compiler` writes it and :mod:`engine.rating.compiled` reads it;
both import this module and neither imports the other's internals.  The IR is
plain JSON data: ints, strings, lists and dicts, money in integer micro-units,
sorted for a stable text form.  The shapes below document every key a reader
may rely on (the golden copies under ``tests/unit/plans/golden_ir`` pin them).
"""

from __future__ import annotations

from typing import Any, TypedDict

IR_FORMAT = "rulebill.plans.ir/1"

# day names of the resolved time band tables: "mon".."sun", plus "<day>_holiday" when calendars are attached
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_SUFFIX = "_holiday"


class RoundingIR(TypedDict):
    mode: str            # up | down | half_up | half_even
    decimals: int        # resolved: the currency's minor units unless the plan says otherwise
    scope: str           # per_call | per_span | per_increment


class TimeBandsIR(TypedDict, total=False):
    name: str
    timezone: str
    holidays: dict[str, list[str]]         # {"dates": ["2026-12-25", ...], "recurring": ["01-01", ...]}
    bands: list[str]
    days: dict[str, list[list[Any]]]       # day name -> [[start minute, end minute, band], ...] covering 0..1440
    # only when a band changes on a second that is not a whole minute: "second", and the day tables are in seconds
    # of day (0..86400); absent, they are in minutes (so plan sets without such times keep their IR and digest)
    resolution: str


class DestinationIR(TypedDict, total=False):
    name: str
    prefixes: list[str]                    # sorted, without a leading "+"
    priority: int                          # only when not 0: a prefix in several groups goes to the highest priority


class RateIR(TypedDict, total=False):
    name: str
    unit: str
    currency: str
    model: str                             # stepped | tiered
    connect_fee: int
    minimum_charge: int
    maximum_cost: dict[str, Any] | None    # {"amount": micros, "beyond": free_beyond | cap | disconnect | cut,
                                           #  "charge": "full" (only when not the default, capped)}
    connect_fee_unanswered: str            # only when not the default (charge): "waive"
    rounding: RoundingIR
    steps: list[list[int]]                 # stepped: [[from unit, price micros, per, increment], ...]
    tiers: dict[str, Any]                  # tiered: {"mode", "per", "increment", "levels": [[up_to|None, price, flat], ...]}


class VersionIR(TypedDict, total=False):
    version: int
    effective_from: str                    # ISO date, 00:00 local time of the version's time band set
    time_bands: str
    monthly_fee: int
    bundles: list[str]
    discounts: list[str]
    destinations: list[str]
    rate_table: list[list[str]]            # resolved rows: [service, direction, zone, destination, band, rate]
    # only when rows name a band set of their own: set id -> its resolved rows (band of that set); such a row prices its
    # traffic ahead of rate_table while its band is in force
    own_band_sets: dict[str, list[list[str]]]


class TariffPlanIR(TypedDict, total=False):
    name: str
    tenant: str
    segment: str
    customer: str
    currency: str
    versions: list[VersionIR]
    version_change: str                    # only when not the default (start): "split"
    extends: str                           # only when set: the parent plan's id


def day_name(weekday: int, holiday: bool) -> str:
    return WEEKDAYS[weekday] + (HOLIDAY_SUFFIX if holiday else "")


def parse_day_name(name: str) -> tuple[int, bool]:
    return WEEKDAYS.index(name[:3]), name.endswith(HOLIDAY_SUFFIX)


def check_format(ir: dict[str, Any]) -> None:
    if ir.get("format") != IR_FORMAT:
        raise ValueError(f"not a plan IR of format {IR_FORMAT}: {ir.get('format')!r}")


__all__ = ["DestinationIR", "HOLIDAY_SUFFIX", "IR_FORMAT", "RateIR", "RoundingIR", "TariffPlanIR", "TimeBandsIR", "VersionIR", "WEEKDAYS", "check_format",
           "day_name", "parse_day_name"]
