"""The usage ledger's COPY rows written in C (store/_copytext.c) are psycopg's own text COPY rows, byte for byte; any
value the C writer does not write declines the whole chunk (None), and psycopg writes it row by row."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

psycopg = pytest.importorskip("psycopg")
_copytext = pytest.importorskip("store._copytext")

UTC_TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.replace(tzinfo=timezone.utc))
WRITTEN = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), UTC_TIMES,
    st.text().filter(lambda s: "\x00" not in s),   # surrogates left out by default
    st.sampled_from(["\\", "\t", "\n", "\r", "\b", "\f", "\v", "a\\tb", "é€😀", "\\N"]),
)
DECLINED = st.one_of(
    st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1), st.floats(allow_nan=False),
    st.datetimes(max_value=datetime(9999, 1, 1)),                                                   # no zone
    st.datetimes(max_value=datetime(9999, 1, 1)).map(lambda d: d.replace(tzinfo=timezone(timedelta(hours=2)))),
    st.just("a\x00b"), st.just("\ud800"), st.binary(max_size=4), st.just(("nested",)),
)


def psycopg_rows(rows: list[tuple[Any, ...]]) -> bytes:
    """What psycopg writes for these rows in a text COPY (its own C formatter, the one write_row uses)."""
    from psycopg.adapt import Transformer
    from psycopg_binary._psycopg import format_row_text   # the implementation psycopg loaded (psycopg[binary])

    out = bytearray()
    tx = Transformer()
    for row in rows:
        format_row_text(row, tx, out)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(WRITTEN, min_size=1, max_size=17).map(tuple), max_size=20))
def test_rows_of_written_values_are_psycopgs_bytes(rows: list[tuple[Any, ...]]) -> None:
    assert _copytext.copy_text(rows) == psycopg_rows(rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WRITTEN, st.lists(WRITTEN, min_size=1, max_size=17).map(tuple)), max_size=20))
def test_rows_after_a_first_value_each_are_the_rows_with_it_in_front(pairs: list[tuple[Any, tuple[Any, ...]]]) -> None:
    """``copy_text(rows, first)``: what the re-rating rewrite sends (each row after the address of the row it replaces)."""
    rows, first = [row for _, row in pairs], [value for value, _ in pairs]
    assert _copytext.copy_text(rows, first) == psycopg_rows([(value, *row) for value, row in pairs])


def test_a_first_value_it_does_not_write_declines_and_a_list_of_another_length_is_refused() -> None:
    assert _copytext.copy_text([("a",), ("b",)], ["(0,1)", 1.5]) is None
    with pytest.raises(TypeError):
        _copytext.copy_text([("a",), ("b",)], ["(0,1)"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(WRITTEN, min_size=1, max_size=6).map(tuple), min_size=1, max_size=5), DECLINED, st.data())
def test_one_value_it_does_not_write_declines_the_chunk(rows: list[tuple[Any, ...]], odd: Any, data: st.DataObject) -> None:
    r = data.draw(st.integers(0, len(rows) - 1))
    i = data.draw(st.integers(0, len(rows[r])))
    rows[r] = rows[r][:i] + (odd,) + rows[r][i:]
    assert _copytext.copy_text(rows) is None
    assert _copytext.copy_text([list(rows[0])]) is None   # a row that is not a tuple


def test_a_ledger_row_as_the_chunk_writes_it() -> None:
    at = datetime(2026, 12, 1, 7, 59, 3, tzinfo=timezone.utc)
    row = ("mno", "c0ffee", "33610012345", "2026-12", "EUR", 12_000, '[["BN_VOICE", 60]]', at, "voice", "DG_NATIONAL", "", 60, 1,
           "TP_SMART_M", 1, "rated", "")
    assert _copytext.copy_text([row]) == (b"mno\tc0ffee\t33610012345\t2026-12\tEUR\t12000\t[[\"BN_VOICE\", 60]]\t"
                                          b"2026-12-01 07:59:03+00:00\tvoice\tDG_NATIONAL\t\t60\t1\tTP_SMART_M\t1\trated\t\n")
    assert _copytext.copy_text([]) == b""


ARRAY_TEXT = st.one_of(st.text().filter(lambda s: "\x00" not in s), st.sampled_from(['"', "\\", '\\"', "{a,b}", "NULL", " ", ",", "é€😀"]))


@settings(max_examples=100, deadline=None)
@given(st.lists(ARRAY_TEXT, max_size=12))
def test_a_text_array_literal_is_read_back_by_postgresql_as_the_same_list(values: list[str]) -> None:
    """What the counter reads pass as ``msisdn = ANY(%s::text[])`` (store.plans._in): PostgreSQL reads the literal back
    into the same strings, in order (quotes, backslashes, braces, commas, the word NULL and blanks kept as text)."""
    url = os.environ.get("RULEBILL_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL (RULEBILL_TEST_POSTGRES_URL)")
    literal = _copytext.text_array(values)
    assert literal is not None
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        assert conn.execute("SELECT %s::text[]", [literal]).fetchone()[0] == values


def test_a_text_array_of_a_value_it_does_not_write_is_declined() -> None:
    assert _copytext.text_array(["33610000001", "a\x00b"]) is None   # NUL: PostgreSQL's text cannot hold it
    assert _copytext.text_array(["33610000001", 7]) is None
    assert _copytext.text_array(["\ud800"]) is None
    assert _copytext.text_array([]) == "{}"
    with pytest.raises(TypeError):
        _copytext.text_array(("a",))
