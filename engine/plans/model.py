"""The plan language as Python values: what a loaded, validated plan set holds.

Every object keeps the :class:`~engine.yamlio.Mark` of its definition so the
validator can point at it.  Amounts are integer micros, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from fractions import Fraction
from typing import Any, Sequence

from engine.money import RoundingMode
from engine.plans.ir import WEEKDAYS
from engine.yamlio import Mark

ANY = "any"  # wildcard in rate bindings (destination, band, zone)


class Unit(str, Enum):
    SECOND = "second"   # voice
    EVENT = "event"     # sms, mms, supplementary
    BYTE = "byte"       # data


# which unit a service is counted in
SERVICE_UNITS = {"voice": Unit.SECOND, "sms": Unit.EVENT, "mms": Unit.EVENT, "data": Unit.BYTE, "supplementary": Unit.EVENT}


class RoundingScope(str, Enum):
    PER_CALL = "per_call"            # default: sum exact amounts, round once
    PER_SPAN = "per_span"            # round each band span, then add
    PER_INCREMENT = "per_increment"  # round each increment's price (what some legacy tariffs publish)


class MaxCostStrategy(str, Enum):
    """What the maximum cost of a call means (each charges at most the maximum unless ``charge: full``)."""

    FREE_BEYOND = "free_beyond"  # default: the call continues, what it uses beyond the maximum is free
    CAP = "cap"                  # the charge is capped at the maximum (a price ceiling)
    DISCONNECT = "disconnect"    # the call should have been cut at the maximum: the CDR is flagged
    CUT = "cut"                  # earlier: explained as "should have been cut", charged capped, not flagged


class MaxCostCharge(str, Enum):
    """What a call that should have been disconnected is charged."""

    CAPPED = "capped"            # default: the maximum
    FULL = "full"                # everything it used


class Unanswered(str, Enum):
    """The connect fee of a call of zero units (unanswered, or answered and hung up at once)."""

    CHARGE = "charge"            # default
    WAIVE = "waive"


class VersionChange(str, Enum):
    """A call that runs past the start of the plan's next version."""

    START = "start"              # default: the whole call at the version in force when it started
    SPLIT = "split"              # cut at the change, each part at its version (as calls are cut at band changes)


class TierMode(str, Enum):
    GRADUATED = "graduated"  # each tier's units at that tier's price
    VOLUME = "volume"        # all units at the price of the tier reached


@dataclass(frozen=True)
class DestinationGroup:
    id: str
    name: str
    prefixes: tuple[str, ...]
    prefix_marks: Sequence[Mark]     # one per prefix (a prefix file's: made when read, see LineMarks)
    mark: Mark
    priority: int = 0            # a prefix in several groups of one plan version: the highest priority wins


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    home: bool
    other_networks: bool        # catch-all for visited networks listed nowhere else
    visited_networks: tuple[str, ...]
    mark: Mark


@dataclass(frozen=True)
class HolidayCalendar:
    id: str
    name: str
    dates: tuple[date, ...]
    recurring: tuple[tuple[int, int], ...]  # (month, day) every year
    mark: Mark


@dataclass(frozen=True)
class Band:
    id: str
    windows: tuple[Window, ...]
    holidays: bool               # this band applies on holidays only
    weight: int
    mark: Mark


@dataclass(frozen=True)
class Window:
    days: tuple[int, ...]        # 0 = Monday
    start_second: int            # second of day, inclusive (band times may carry seconds: "08:00:30")
    end_second: int              # second of day, exclusive; 86400 = midnight


@dataclass(frozen=True)
class TimeBandSet:
    id: str
    name: str
    timezone: str
    holiday_calendars: tuple[str, ...]
    bands: tuple[Band, ...]
    mark: Mark
    calendar_marks: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class Step:
    """From ``from_unit`` on (counted from the start of the event), ``price`` per ``per`` units, billed in ``increment`` blocks."""

    from_unit: int
    price_micros: int
    per: int
    increment: int


@dataclass(frozen=True)
class Tier:
    up_to: int | None            # units; None = unbounded (last tier)
    price_micros: int            # per `per` units
    flat_micros: int = 0         # added once when the tier is reached (volume) / entered (graduated)


@dataclass(frozen=True)
class Rounding:
    mode: RoundingMode = RoundingMode.HALF_UP
    decimals: int | None = None          # None: the currency's ISO 4217 minor units (EUR 2, JPY 0, KWD 3)
    scope: RoundingScope = RoundingScope.PER_CALL


@dataclass(frozen=True)
class MaxCost:
    amount_micros: int
    strategy: MaxCostStrategy
    charge: MaxCostCharge = MaxCostCharge.CAPPED


@dataclass(frozen=True)
class Rate:
    id: str
    name: str
    unit: Unit
    currency: str
    steps: tuple[Step, ...]          # stepped pricing (empty when tiered)
    tiers: tuple[Tier, ...]          # tiered pricing (empty when stepped)
    tier_mode: TierMode | None
    tier_per: int
    tier_increment: int
    connect_fee_micros: int
    minimum_charge_micros: int
    maximum_cost: MaxCost | None
    rounding: Rounding
    mark: Mark
    connect_fee_unanswered: Unanswered = Unanswered.CHARGE

    @property
    def model(self) -> str:
        return "tiered" if self.tiers else "stepped"


@dataclass(frozen=True)
class RateBinding:
    """One row of a plan version's rate table: which rate prices which traffic."""

    service: str
    direction: str
    destination: str   # DST_ id or ANY
    band: str          # band id of the plan's time band set, or ANY
    zone: str          # ZN_ id, "home" or ANY
    rate: str
    mark: Mark
    time_bands: str = ""   # the row's own band set (TB_...): its band is of that set, and it wins when that band is in force


class FeeTiming(str, Enum):
    """When the bill run charges a recurring fee (read by engine.billing only; rating ignores it)."""

    ADVANCE = "advance"    # the coming cycle's fee on this cycle's bill (the closed cycle is then trued up by days)
    ARREARS = "arrears"    # the closed cycle's fee, prorated by the days of service in it


DEFAULT_TAX_CATEGORY = "standard"


@dataclass(frozen=True)
class PlanVersion:
    version: int
    effective_from: date
    time_bands: str
    monthly_fee_micros: int
    bundles: tuple[str, ...]
    discounts: tuple[str, ...]
    bindings: tuple[RateBinding, ...]
    mark: Mark
    ref_marks: dict[str, Mark] = field(default_factory=dict, compare=False)
    rate_table: str = ""
    # billing: when the monthly fee is charged, and the tax category of the plan's fee and usage (plans/taxes/)
    fee_timing: FeeTiming = FeeTiming.ADVANCE
    tax_category: str = DEFAULT_TAX_CATEGORY
    # one_off bundles a subscriber on this version may buy (engine.billing.addons); their units cover traffic after
    # the version's own bundles (a higher priority number, checked by the validator)
    add_ons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateTable:
    """Rate rows shared by several plans (RTT_...)."""

    id: str
    name: str
    bindings: tuple[RateBinding, ...]
    mark: Mark


class Segment(str, Enum):
    RETAIL_POSTPAID = "retail_postpaid"
    WHOLESALE = "wholesale"


@dataclass(frozen=True)
class TariffPlan:
    id: str
    name: str
    tenant: str          # owner: the MNO for retail/wholesale plans it sells, an MVNO for its own retail plans
    segment: Segment
    customer: str        # wholesale: the MVNO billed; retail: ""
    currency: str
    versions: tuple[PlanVersion, ...]
    mark: Mark
    version_change: VersionChange = VersionChange.START
    extends: str = ""    # TP_ id of the parent plan that prices what this plan has no rate for ("" = none)
    ref_marks: dict[str, Mark] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Applicability:
    """An applicability condition: its source (kept for the IR) and the parsed engine.conditions.Condition."""

    source: Any
    condition: Any


class Recurrence(str, Enum):
    MONTHLY = "monthly"    # renews every bill cycle
    ONE_OFF = "one_off"    # bought once, valid for validity_days


class Refund(str, Enum):
    """What cancelling an add-on (a one_off bundle bought with BuyAddOn) gives back of its fee (engine.billing.addons)."""

    NONE = "none"            # nothing (the default)
    UNUSED = "unused"        # the fee times the share of the allowance not used at the cancel instant
    PRORATED = "prorated"    # the fee times the share of its validity days after the cancel day


class Proration(str, Enum):
    DAILY = "daily"        # fee and allowance scaled by days left in the cycle
    FULL = "full"          # full fee and allowance whatever the activation day
    NONE = "none"          # nothing until the next full cycle


@dataclass(frozen=True)
class Bundle:
    id: str
    name: str
    service: str
    unit: Unit
    allowance: int                   # in `unit`
    destinations: tuple[str, ...]    # empty = any destination
    zones: tuple[str, ...]           # empty = home zone only? no: empty = any zone
    recurrence: Recurrence
    validity_days: int               # one-off bundles
    fee_micros: int
    currency: str
    proration: Proration
    priority: int                    # lower is consumed first
    condition: Applicability | None
    mark: Mark
    ref_marks: dict[str, Mark] = field(default_factory=dict, compare=False)
    # billing: when the bundle's fee is charged and its tax category
    fee_timing: FeeTiming = FeeTiming.ADVANCE
    tax_category: str = DEFAULT_TAX_CATEGORY
    refund: Refund = Refund.NONE     # add-ons: what cancelling one gives back of its fee


class DiscountKind(str, Enum):
    PERCENTAGE = "percentage"
    FIXED = "fixed"
    TIERED = "tiered"
    COMMITMENT = "commitment"


class DiscountLevel(str, Enum):
    CDR = "cdr"          # applied to each rated CDR
    PERIOD = "period"    # applied to a bill period's charges


class Compounding(str, Enum):
    """What a period discount is computed on (read by engine.billing)."""

    GROSS = "gross"      # default: the applicable charges before any other discount (discounts do not compound)
    NET = "net"          # what the discounts applied before it (in the plan's order) left of the applicable charges


class CommitmentBasis(str, Enum):
    """Whether a commitment (minimum spend) is measured before or after the other period discounts of its scope."""

    BEFORE_DISCOUNTS = "before_discounts"   # default: gross applicable spend
    AFTER_DISCOUNTS = "after_discounts"     # spend net of the money-off discounts of the same plan (or account)


class ChargeKind(str, Enum):
    """Which charges of a bill a period discount looks at."""

    USAGE = "usage"      # rated CDRs (the default: the sample plans' discounts are on usage)
    FEES = "fees"        # recurring fees of tariff plans and bundles
    ONE_OFF = "one_off"  # one-off charges (activation, SIM, penalty)


@dataclass(frozen=True)
class DiscountTier:
    up_to_micros: int | None     # spend threshold (basis spend) or units (basis units)
    percent: Fraction


@dataclass(frozen=True)
class DiscountPlan:
    id: str
    name: str
    kind: DiscountKind
    level: DiscountLevel
    currency: str
    services: tuple[str, ...]
    destinations: tuple[str, ...]
    condition: Applicability | None
    percent: Fraction                    # percentage
    amount_micros: int                   # fixed: amount off; commitment: minimum spend
    tier_mode: TierMode | None
    tiers: tuple[DiscountTier, ...]
    rounding: Rounding
    mark: Mark
    ref_marks: dict[str, Mark] = field(default_factory=dict, compare=False)
    # billing: how it compounds, how a commitment is measured, which charges it sees, which tariff plans' charges
    compounding: Compounding = Compounding.GROSS
    commitment_basis: CommitmentBasis = CommitmentBasis.BEFORE_DISCOUNTS
    charges: tuple[ChargeKind, ...] = (ChargeKind.USAGE,)
    plans: tuple[str, ...] = ()          # TP_ ids; empty = the charges of any plan


# UNCL 5305 duty/tax category codes EN 16931 knows
TAX_CODES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
EXEMPT_CODES = ("E", "AE", "K", "G", "O")   # need an exemption reason (EN 16931 BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10)


@dataclass(frozen=True)
class TaxCategory:
    """One rate of a country's VAT: what plans name (``standard``) -> category code and percent."""

    name: str
    code: str                    # UNCL 5305: S standard, Z zero rated, E exempt ...
    percent: Fraction            # 0.2 for 20 %
    exemption_code: str          # VATEX-... for exempt codes
    exemption_reason: str
    mark: Mark


@dataclass(frozen=True)
class TaxExemption:
    """An account-level exemption (reverse charge, export, diplomatic ...): every line of the bill goes to ``code``."""

    name: str
    code: str
    exemption_code: str
    exemption_reason: str
    needs_buyer_vat_id: bool     # reverse charge and intra-community supplies name the buyer's VAT id
    mark: Mark


@dataclass(frozen=True)
class TaxTable:
    """``kind: tax_table`` (TAX_...): the VAT of one country, by category."""

    id: str
    name: str
    country: str                 # ISO 3166-1 alpha-2 of the buyer (the place of supply of telecom services)
    categories: dict[str, TaxCategory]
    exemptions: dict[str, TaxExemption]
    mark: Mark


@dataclass
class PlanSet:
    """Everything loaded from one or more plan folders, by id."""

    destinations: dict[str, DestinationGroup] = field(default_factory=dict)
    zones: dict[str, Zone] = field(default_factory=dict)
    calendars: dict[str, HolidayCalendar] = field(default_factory=dict)
    time_bands: dict[str, TimeBandSet] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    rate_tables: dict[str, RateTable] = field(default_factory=dict)
    tariff_plans: dict[str, TariffPlan] = field(default_factory=dict)
    bundles: dict[str, Bundle] = field(default_factory=dict)
    discount_plans: dict[str, DiscountPlan] = field(default_factory=dict)
    tax_tables: dict[str, TaxTable] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def table(self, kind: str) -> dict[str, Any]:
        return getattr(self, kind)
