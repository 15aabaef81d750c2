"""Rating one CDR costs the same whatever its duration (counted in function calls, not wall time), and CDRs beyond the
declared limits are refused with the field named, before any pricing."""

from __future__ import annotations

import sys
from typing import Any, Callable

from engine.rating import CdrLimits, CompiledPlans, Evaluator
from engine.rating.limits import DEFAULT_LIMITS
from tests.unit.rating.helpers import cdr, ir_plan, ir_rate


def calls(fn: Callable[[], Any]) -> int:
    """Python and C function calls made by ``fn`` (a CPU budget that does not depend on the machine)."""
    count = 0

    def profile(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def _plan(days: dict[str, list[list[Any]]] | None = None) -> CompiledPlans:
    ir = ir_plan({"RT": ir_rate([[0, 100_000, 60, 60], [60, 50_000, 60, 1]], connect=20_000)},
                 [["voice", "originating", "home", "DST_ALL", band, "RT"] for band in ("ANYTIME", "DAY", "NIGHT")],
                 days=days, timezone_name="Europe/Paris")
    ir["time_bands"]["TB"]["holidays"] = {"dates": [], "recurring": ["05-01", "12-25"]}
    ir["time_bands"]["TB"]["bands"] = ["ANYTIME", "DAY", "NIGHT"]
    return CompiledPlans.from_ir(ir)


def test_the_cost_of_one_call_does_not_grow_with_its_duration() -> None:
    # one band all week in a zone with DST changes: a minute, two days and (limits raised) 200 days across two DST
    # changes and holidays cost the same number of calls; walking time (per day, per quarter hour) would not
    ev = Evaluator(_plan(), CdrLimits(max_call_seconds=400 * 86400))
    start = "2026-03-20T10:00:00Z"
    for seconds in (60, 200 * 86400):
        ev.rate(cdr(start=start, duration_seconds=seconds), "TP")  # warm the zone's transition cache
    minute = calls(lambda: ev.rate(cdr(start=start, duration_seconds=60), "TP"))
    two_days = calls(lambda: ev.rate(cdr(start=start, duration_seconds=48 * 3600), "TP"))
    long = calls(lambda: ev.rate(cdr(start=start, duration_seconds=200 * 86400), "TP"))
    assert two_days <= minute + 80
    assert long <= minute + 200, (minute, two_days, long)
    assert ev.rate(cdr(start=start, duration_seconds=200 * 86400), "TP").spans[0].end == 200 * 86400


def test_a_call_that_changes_band_costs_per_band_change_not_per_second() -> None:
    week = {d: [[0, 480, "NIGHT"], [480, 1200, "DAY"], [1200, 1440, "NIGHT"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    ev = Evaluator(_plan(week))
    start = "2026-03-20T10:00:00Z"
    ev.rate(cdr(start=start, duration_seconds=48 * 3600), "TP")
    one_change = calls(lambda: ev.rate(cdr(start=start, duration_seconds=12 * 3600), "TP"))
    at_the_limit = calls(lambda: ev.rate(cdr(start=start, duration_seconds=48 * 3600), "TP"))
    rated = ev.rate(cdr(start=start, duration_seconds=48 * 3600), "TP")
    assert len(rated.spans) == 5
    # each further span costs a bounded number of calls (bisections, one parts step): no loop over seconds or minutes
    assert at_the_limit - one_change <= 3 * 250, (one_change, at_the_limit)


def test_cdrs_beyond_the_limits_are_rejected_naming_the_field() -> None:
    ev = Evaluator(_plan())
    cases = [
        (dict(duration_seconds=DEFAULT_LIMITS.max_call_seconds + 1), "duration_seconds"),
        (dict(duration_seconds=2**62), "duration_seconds"),
        (dict(service="data", volume_down_bytes=10**12 + 1), "volume_down_bytes"),
        (dict(service="data", volume_up_bytes=6 * 10**11, volume_down_bytes=6 * 10**11), "volume_down_bytes"),
        (dict(service="sms", event_count=10**9), "event_count"),
        (dict(start="2150-01-01T00:00:00Z"), "start_time"),
    ]
    for kw, field in cases:
        service = kw.pop("service", "voice")
        rated = ev.rate(cdr(service, **kw), "TP")
        assert rated.status.value == "rejected" and rated.reason.startswith(f"rejected: {field}:"), rated.reason
        # the batch loop refuses the same rows
        from engine.cdr import to_row

        assert ev.rate_rows([to_row(cdr(service, **kw))], "TP")[0][:3] == ("rejected", 0, rated.reason)
    assert ev.rate(cdr(duration_seconds=DEFAULT_LIMITS.max_call_seconds), "TP").rated


def test_limits_come_from_settings() -> None:
    from engine.settings import Settings

    limits = CdrLimits.from_settings(Settings(cdr_max_call_seconds=3600, cdr_max_volume_bytes=10, cdr_max_events=5))
    assert (limits.max_call_seconds, limits.max_volume_bytes, limits.max_events) == (3600, 10, 5)
    assert Evaluator(_plan(), limits).rate(cdr(duration_seconds=3601), "TP").status.value == "rejected"
