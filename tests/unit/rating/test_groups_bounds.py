"""RateCdrs' groups (engine.rating.groups._Group) and how a group's stored rows are split by message
(engine.rating.desk._taken_by_message): a group keeps where each message starts and closes at its CDR bound and at its
byte bound (a message never split: the first one joins whatever its size), and the stored rows of a chunk of several
messages are what each message's own CDRs held, together what the whole chunk held."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cdr import COLUMNS
from engine.rating.desk import _taken_by_message
from engine.rating.groups import _Group
from engine.rating.usage import Taken

_ID, _TENANT = COLUMNS.index("cdr_id"), COLUMNS.index("tenant")


def _row(tenant: str, cdr_id: str) -> tuple[Any, ...]:
    row: list[Any] = [None] * len(COLUMNS)
    row[_TENANT], row[_ID] = tenant, cdr_id
    return tuple(row)


class _Message:
    def __init__(self, ids: list[str], plan: str = "", counters: bool = True) -> None:
        self.rows = self.own = [_row("mno", i) for i in ids]
        self.tariff_plan, self.use_counters = plan, counters


def test_a_group_closes_before_a_message_that_would_pass_its_byte_bound() -> None:
    group = _Group(_Message(["a", "b"]), 600)
    assert group.join(_Message(["c"]), 100, 300, 1000)
    assert not group.join(_Message(["d"]), 100, 101, 1000)   # 600 + 300 + 101 bytes: past 1,000
    assert group.join(_Message(["d"]), 100, 100, 1000)       # exactly 1,000: joins
    assert group.starts == [0, 2, 3] and group.count == 4 and group.size == 1000
    assert [row[_ID] for row in group.rows] == ["a", "b", "c", "d"]
    big = _Group(_Message(["e"]), 5000)   # a message larger than the bound is a group of its own
    assert not big.join(_Message(["f"]), 100, 1, 1000)
    unbounded = _Group(_Message(["g"]), 5000)
    assert unbounded.join(_Message(["h"]), 100, 5000, 0)   # no byte bound set: the CDR bound alone
    assert not unbounded.join(_Message(["i", "j"]), 3, 1, 0)   # 2 + 2 CDRs: past 3


STORED = st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["2026-11", "2026-12", ""]), st.integers(0, 900),
                            st.integers(0, 3_000_000)), unique_by=lambda t: t[0], max_size=12)


@settings(max_examples=100, deadline=None)
@given(cuts=st.sets(st.integers(1, 11), max_size=5), stored=STORED)
def test_a_chunks_stored_rows_split_by_message_add_up_to_the_chunks(cuts: set[int], stored: list[Any]) -> None:
    rows = [_row("mno", f"c{i}") for i in range(12)]
    starts = sorted(cuts)
    held = [(f"c{i}", "33610000001", cycle, "EUR", charge, json.dumps([["B_MIN", units]] if units else []))
            for i, cycle, units, charge in stored]
    for use_c in (False, True):
        first, later = _taken_by_message(rows, starts, [("mno", list(held))], use_c)
        whole = Taken()
        whole.add("mno", held)
        parts = [first, *later.values()]
        assert set(later) <= set(starts)
        for start, taken in later.items():   # each later message's part holds its own CDRs only
            end = min([s for s in starts if s > start], default=12)
            assert taken.replaced and {int(c[1:]) for _t, c in taken.replaced} <= set(range(start, end))
        assert {int(c[1:]) for _t, c in first.replaced} <= set(range(starts[0] if starts else 12))
        assert set().union(*(p.replaced for p in parts)) == whole.replaced
        for k in whole.units:
            assert sum(p.units.get(k, {}).get("B_MIN", 0) for p in parts) == whole.units[k].get("B_MIN", 0)
        for k in whole.charges:
            assert sum(p.charges.get(k, {}).get("EUR", 0) for p in parts) == whole.charges[k]["EUR"]
        merged = Taken()   # what the chunk's write replaces: the parts added up (Taken.update)
        for p in parts:
            merged.update(p)
        assert (merged.replaced, merged.keys, merged.units) == (whole.replaced, whole.keys, whole.units)
        assert {k: {c: v for c, v in by.items() if v} for k, by in merged.charges.items()} == \
            {k: {c: v for c, v in by.items() if v} for k, by in whole.charges.items()}
