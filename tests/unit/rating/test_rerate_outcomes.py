"""What a re-rating chunk's rows come to (engine.rating.desk._outcomes): counted and added up as a row-by-row loop
would, whether the rated rows share one currency (the loops in C) or not (row by row)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, strategies as st

from engine.rating.desk import ChunkOutcomes, _outcomes
from engine.rating.evaluator import RATED, REJECTED, UNRATED

EUR, USD = SimpleNamespace(currency="EUR"), SimpleNamespace(currency="USD")


def _row(status: str, charge: int, version: Any) -> tuple[Any, ...]:
    return (status, charge if status == RATED else 0, "", None, version, "", "", 0, "", None)


def _by_row(results: list[tuple[Any, ...]]) -> ChunkOutcomes:
    charged: dict[str, int] = {}
    for r in results:
        if r[0] == RATED:
            currency = r[4].currency if r[4] is not None else ""
            charged[currency] = charged.get(currency, 0) + r[1]
    return ChunkOutcomes(len(results), sum(r[0] == RATED for r in results), sum(r[0] == REJECTED for r in results), charged)


rows = st.lists(st.tuples(st.sampled_from([RATED, RATED, UNRATED, REJECTED]), st.integers(0, 10**9),
                          st.sampled_from([EUR, EUR, USD, None])).map(lambda t: _row(*t)), max_size=40)


@given(rows)
def test_a_chunk_comes_to_what_its_rows_add_up_to(results: list[tuple[Any, ...]]) -> None:
    assert _outcomes(results) == _by_row(results)


def test_an_unrated_row_in_another_currency_leaves_the_rated_rows_sum_alone() -> None:
    results = [_row(RATED, 1_500_000, EUR), _row(UNRATED, 0, USD), _row(RATED, 250_000, EUR), _row(REJECTED, 0, None)]
    assert _outcomes(results) == ChunkOutcomes(4, 2, 1, {"EUR": 1_750_000})
    assert _outcomes([_row(UNRATED, 0, EUR)]) == ChunkOutcomes(1, 0, 0, {})
