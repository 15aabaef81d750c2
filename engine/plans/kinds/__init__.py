"""One parser module per ``kind:`` of plan file, dispatched from :data:`PARSERS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from engine.plans.kinds import (
    bundle,
    destination_group,
    discount_plan,
    holiday_calendar,
    rate,
    rate_table,
    tariff_plan,
    tax_table,
    time_bands,
    zone,
)
from engine.plans.kinds.common import Ctx
from engine.yamlio import MarkedMap

Parser = Callable[[MarkedMap, Ctx, Path], Any]

# kind -> (parser, PlanSet attribute)
PARSERS: dict[str, tuple[Parser, str]] = {
    "destination_group": (destination_group.parse, "destinations"),
    "zone": (zone.parse, "zones"),
    "holiday_calendar": (holiday_calendar.parse, "calendars"),
    "time_bands": (time_bands.parse, "time_bands"),
    "rate": (rate.parse, "rates"),
    "rate_table": (rate_table.parse, "rate_tables"),
    "tariff_plan": (tariff_plan.parse, "tariff_plans"),
    "bundle": (bundle.parse, "bundles"),
    "discount_plan": (discount_plan.parse, "discount_plans"),
    "tax_table": (tax_table.parse, "tax_tables"),
}
