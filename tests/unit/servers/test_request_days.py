"""A day a request names (a cycle date, a charge date, a re-bill period) is in the range of a request's timestamps:
servers.convert.day_problem and ts_problem agree at the edges and far beyond them."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from servers.convert import day_problem, ts_problem


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1969, 12, 31), date(1970, 1, 1), date(2199, 12, 31), date(2200, 1, 1),
                                 date(9999, 12, 31)])
def test_a_day_is_refused_exactly_when_its_midnight_is(day: date) -> None:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.combine(day, time(0), tzinfo=timezone.utc))
    inside = date(1970, 1, 1) <= day < date(2200, 1, 1)
    assert (day_problem(day) is None) == (ts_problem(stamp) is None) == inside
    assert day_problem(day) in (None, ts_problem(stamp))
