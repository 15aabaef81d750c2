"""What RatingDesk reads of a chunk's subscribers in one pass (engine.rating.desk._subscriber_facts): whether one has a
credit limit (the chunk may fire credit alerts) and whether _add_ons_of has a number to ask purchases for.  Hypothesis
against the per-row answers: a fact said False must be false of every row (a purchase never missed, an alert never
skipped); the add-on fact False only when no row has a purchase running."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rating.desk import _add_ons_of, _Chunk, _subscriber_facts
from engine.rating.usage import NO_ADD_ONS, RatedSubscriber

BASE = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _sub(n: int, limit: int | None, until: datetime | None) -> RatedSubscriber:
    return RatedSubscriber(f"S{n}", "t1", f"336{n:05d}", "TP", "", "active", limit, "EUR" if limit is not None else "", 1, until)


class _Reader:
    """An add-on reader that records the numbers it is asked for (and finds no purchase)."""

    def __init__(self) -> None:
        self.asked: list[set[tuple[str, str]]] = []

    def active_add_ons(self, numbers: set[tuple[str, str]], since: datetime, until: datetime) -> list[Any]:
        self.asked.append(set(numbers))
        return []


class _Uow:
    def __init__(self) -> None:
        self.add_ons = _Reader()


until_of = st.one_of(st.none(), st.just(NO_ADD_ONS), st.integers(-3, 3).map(lambda h: BASE + timedelta(hours=h)))
subscriber = st.one_of(st.none(), st.builds(_sub, st.integers(0, 5), st.one_of(st.none(), st.integers(0, 10**9)), until_of))
row = st.tuples(subscriber, st.one_of(st.none(), st.integers(-3, 3).map(lambda h: BASE + timedelta(hours=h, minutes=30))))


@settings(max_examples=300, deadline=None)
@given(st.lists(row, max_size=12))
def test_the_facts_are_the_per_row_answers(rows: list[tuple[RatedSubscriber | None, datetime | None]]) -> None:
    chunk = _Chunk([])
    chunk.subscribers = [s for s, _ in rows]
    chunk.ats = [at for _, at in rows]
    # a row has a counter key only with a subscriber and a start time (RatingDesk._keys)
    chunk.keys = [(s.tenant_id, s.msisdn, "2026-12") if s is not None and at is not None else None for s, at in rows]
    limited, running = _subscriber_facts(chunk)
    assert limited == any(s is not None and s.credit_limit_micros is not None for s, _ in rows)
    wanted = {(s.tenant_id, s.msisdn) for s, at in rows
              if s is not None and at is not None and (s.add_ons_until is None or at < s.add_ons_until)}
    if not running:
        assert not wanted
    uow = _Uow()
    assert _add_ons_of(uow, chunk) == []
    assert uow.add_ons.asked == ([wanted] if wanted else [])
    assert chunk.facts == (limited, running)   # kept: a chunk rated again reads them once


def test_a_chunk_of_numbers_that_never_bought_an_add_on_asks_nothing() -> None:
    chunk = _Chunk([])
    chunk.subscribers = [_sub(n, None, NO_ADD_ONS) for n in range(3)]
    chunk.ats = [BASE] * 3
    chunk.keys = [("t1", s.msisdn, "2026-12") for s in chunk.subscribers]
    assert _subscriber_facts(chunk) == (False, False)
    one = _Chunk([])
    one.subscribers = [*chunk.subscribers, _sub(9, 5, BASE + timedelta(seconds=1))]
    one.ats = [BASE] * 4
    assert _subscriber_facts(one) == (True, True)
