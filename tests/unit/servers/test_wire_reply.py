"""RatingService writes the reply of a rated chunk (servers.rating_service.rated_rows_pb): the C writer (servers/_wire.c)
gives the bytes of the RatedCdrs the Python path writes, for any evaluator rows (hypothesis), and leaves the rows it does
not write to the Python path in their places."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.v1 import rating_pb2 as pb
from engine.rating.compiled import CompiledVersion
from engine.rating.desk import RatedRows, _Chunk
from engine.rating.evaluator import RATED, REJECTED, UNRATED
from engine.rating.limits import DEFAULT_LIMITS
from engine.rating.result import DiscountLine
from servers import rating_service

if rating_service._wire is None:   # pragma: no cover - a build without a C compiler
    pytest.skip("servers._wire is not built", allow_module_level=True)


def version(plan_id: str, number: int, currency: str) -> CompiledVersion:
    """A tariff plan version as the evaluator's rows name it (the reply reads its id, number and currency only)."""
    return CompiledVersion(plan_id, number, 0, currency, None, None, {}, 0, (), ())  # type: ignore[arg-type]


texts = st.one_of(st.sampled_from(["", "TP_SMART_M", "DG_NATIONAL", "peak", "RT_VOICE_INTERNATIONAL"]),
                  st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12))
amounts = st.one_of(st.integers(-3, 3), st.integers(-2**63, 2**63 - 1), st.sampled_from([0, 60, 1_000_000, 2**63, -2**63 - 1]))
versions = st.builds(version, texts, st.integers(-2, 2**40), st.sampled_from(["EUR", "", "GBP"]))
uses = st.one_of(st.none(), st.just(()), st.lists(st.tuples(texts, amounts), max_size=3).map(tuple),
                 st.lists(st.tuples(texts, amounts), max_size=2))
lines = st.lists(st.builds(DiscountLine, texts, amounts), max_size=3)
# a call the C loop priced by parts: (gross, ((start, end, band, rate id, billed, bundle units, micros), ...))
parts = st.tuples(amounts, st.lists(st.tuples(amounts, amounts, texts, texts, amounts, amounts, amounts), min_size=1, max_size=4).map(tuple))
hows = st.one_of(st.tuples(amounts, amounts, amounts), st.tuples(amounts, amounts, amounts, st.one_of(st.none(), lines.map(tuple), lines)),
                 parts)


@st.composite
def evaluator_row(draw: st.DrawFn) -> tuple[Any, ...]:
    """A row of the evaluator that rated a CDR in one span or by parts, or did not rate it (engine.rating.evaluator.Row)."""
    if draw(st.integers(0, 4)) == 0:
        return (draw(st.sampled_from([UNRATED, REJECTED])), 0, draw(texts), None, None, "", "", 0, "", None)
    return (RATED, draw(amounts), draw(texts), draw(uses), draw(versions), draw(texts), draw(texts), draw(amounts), draw(texts),
            draw(hows))


@st.composite
def rated_chunk(draw: st.DrawFn) -> tuple[RatedRows, list[tuple[Any, ...]]]:
    results = draw(st.lists(evaluator_row(), min_size=1, max_size=8))
    rows = [(draw(texts),) for _ in results]
    chunk = _Chunk(rows)
    chunk.versions = [type("Head", (), {"version": draw(st.integers(0, 2**40))})() for _ in results]  # type: ignore[misc]
    chunk.plan_ids = [draw(texts) for _ in results]
    chunk.compileds = [draw(st.sampled_from([None, object()])) for _ in results]  # type: ignore[misc]
    return RatedRows(None, chunk, results), rows   # type: ignore[arg-type]


def python_reply(rated: RatedRows, rows: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> pb.RateCdrsResponse:
    with monkeypatch.context() as m:
        m.setattr(rating_service, "_wire", None)
        reply = pb.RateCdrsResponse()
        rating_service.rated_rows_pb(rated, rows, [], False, DEFAULT_LIMITS, reply)
    return reply


@settings(max_examples=200, deadline=None)
@given(rated_chunk())
def test_the_c_writer_gives_the_reply_the_python_path_gives(chunk: tuple[RatedRows, list[tuple[Any, ...]]]) -> None:
    rated, rows = chunk
    reply = pb.RateCdrsResponse()
    with pytest.MonkeyPatch.context() as monkeypatch:
        try:
            want = python_reply(rated, rows, monkeypatch)
        except ValueError:   # a value protobuf does not hold (an int beyond int64): the C writer leaves it to the same error
            with pytest.raises(ValueError):
                rating_service.rated_rows_pb(rated, rows, [], False, DEFAULT_LIMITS, reply)
            return
    rating_service.rated_rows_pb(rated, rows, [], False, DEFAULT_LIMITS, reply)
    assert reply.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)


def test_the_c_writer_leaves_what_it_does_not_write_in_place() -> None:
    """Unrated rows and rows without a plain ``how`` come back as their index, between the bytes of the others."""
    v = version("TP", 1, "EUR")
    one = (RATED, 120, "RT_A", (("BN_VOICE", 60),), v, "DG", "", 60, "peak", (0, 60, 120))
    unrated = (UNRATED, 0, "no-plan: none", None, None, "", "", 0, "", None)
    parts = rating_service._wire.rated_reply([one, unrated, one, one], [("a",), ("b",), ("c",), ("d",)], [3, 3, 3, 3], RATED,
                                             pb.RATING_STATUS_RATED)
    assert [type(p) for p in parts] == [bytes, int, bytes] and parts[1] == 1
    got = pb.RateCdrsResponse.FromString(parts[0] + parts[2])
    assert [r.cdr_id for r in got.rated] == ["a", "c", "d"]
    first = got.rated[0]
    assert (first.charge.amount_micros, first.gross.amount_micros, first.spans[0].billed_units, first.spans[0].bundle_units,
            first.bundles[0].bundle_id, first.plan_set_version) == (120, 0, 60, 60, "BN_VOICE", 3)
