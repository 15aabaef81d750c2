"""Factories for rating tests: plan sets from YAML text, CDRs with sensible defaults."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.plans import compile_plan_set, load_plan_set
from engine.rating import CompiledPlans

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[3]

_counter = iter(range(1, 10**9))


def compile_folder(*paths: Path | str) -> CompiledPlans:
    plan_set, problems = load_plan_set(list(paths))
    assert not problems, "\n".join(map(str, problems))
    assert plan_set is not None
    return compile_plan_set(plan_set)


def compile_texts(tmp_path: Path, files: dict[str, str]) -> CompiledPlans:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return compile_folder(tmp_path)


def cdr(service: str = "voice", b_number: str = "33612345678", start: str = "2026-03-02T10:00:00Z", **kw: Any) -> MediatedCdr:
    n = next(_counter)
    origin = kw.pop("origin_id", f"o{n}")
    direction = kw.pop("direction", "originating")
    return MediatedCdr(
        cdr_id=cdr_identity("test", origin), source="test", origin_id=origin, service=Service(service),
        direction=Direction(direction), start_time=datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(timezone.utc),
        a_number=kw.pop("a_number", "33612000001"), b_number=b_number, **kw,
    )


def ir_plan(rates: dict[str, dict[str, Any]], rows: list[list[str]], days: dict[str, list[list[Any]]] | None = None,
            timezone_name: str = "UTC", bundles: dict[str, Any] | None = None, prefixes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A minimal plan IR built directly (for property tests: no files, no validation round trip)."""
    from engine.plans.compiler import IR_FORMAT

    all_day = [[0, 1440, "ANYTIME"]]
    week = days or {d: all_day for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    bands = sorted({seg[2] for segs in week.values() for seg in segs})
    prefixes = prefixes or {"DST_ALL": ["3"]}
    return {
        "format": IR_FORMAT,
        "destinations": {g: {"name": g, "prefixes": p} for g, p in prefixes.items()},
        "zones": {},
        "time_bands": {"TB": {"name": "TB", "timezone": timezone_name, "holidays": {"dates": [], "recurring": []},
                              "bands": bands, "days": week}},
        "rates": rates,
        "bundles": bundles or {},
        "discount_plans": {},
        "tariff_plans": {"TP": {"name": "TP", "tenant": "mno", "segment": "retail_postpaid", "customer": "", "currency": "EUR",
                                "versions": [{"version": 1, "effective_from": "2000-01-01", "time_bands": "TB", "monthly_fee": 0,
                                              "bundles": list((bundles or {}).keys()), "discounts": [],
                                              "destinations": sorted(prefixes), "rate_table": rows}]}},
    }


def ir_rate(steps: list[list[int]], connect: int = 0, minimum: int = 0, maximum: int | None = None, mode: str = "half_up",
            decimals: int = 2, scope: str = "per_call", unit: str = "second") -> dict[str, Any]:
    return {"name": "r", "unit": unit, "currency": "EUR", "model": "stepped", "steps": steps, "connect_fee": connect,
            "minimum_charge": minimum, "maximum_cost": None if maximum is None else {"amount": maximum, "beyond": "free_beyond"},
            "rounding": {"mode": mode, "decimals": decimals, "scope": scope}}
