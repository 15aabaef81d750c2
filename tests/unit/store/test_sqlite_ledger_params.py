"""The SQLite ledger's rows as write_chunk's packed INSERT takes them, computed in C (store/_copytext.c): each CDR id's
look-up key is store.db.ledger_key's (BLAKE2b-64, RFC 7693) for any text, and a chunk's parameters are each row's
columns with its start time as _sqlite_time writes it, then its key -- what the Python loop gives, for any rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.db import ledger_key
from store.plans import _sqlite_time

_copytext = pytest.importorskip("store._copytext")

IDS = st.one_of(st.text(max_size=300), st.text(st.characters(max_codepoint=127), min_size=120, max_size=140),
                st.sampled_from(["", "a", "x" * 127, "x" * 128, "x" * 129, "x" * 256, "x" * 257, "é€😀" * 50]))
TIMES = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(lambda d: d.replace(tzinfo=timezone.utc)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                 timezones=st.sampled_from([timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])),
)


def python_params(entries: list[tuple[Any, ...]]) -> list[Any]:
    return [v for e in entries for v in (*e[:7], _sqlite_time(e[7]), *e[8:], ledger_key(e[1]))]


@settings(max_examples=300, deadline=None)
@given(st.lists(IDS, max_size=20))
def test_the_keys_are_ledger_keys(ids: list[str]) -> None:
    assert _copytext.ledger_keys(ids, ledger_key) == [ledger_key(i) for i in ids]


def test_an_id_that_is_not_a_str_is_the_python_functions() -> None:
    seen: list[Any] = []

    def key_of(x: Any) -> int:
        seen.append(x)
        return 7

    assert _copytext.ledger_keys(["a", 3, "\ud800"], key_of) == [ledger_key("a"), 7, 7]
    assert seen == [3, "\ud800"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["mno", "mvno-alpha"]), IDS, st.text(max_size=8), st.sampled_from(["2026-12", ""]),
                          st.sampled_from(["EUR", ""]), st.integers(-2**63, 2**63 - 1), st.sampled_from(["[]", '[["BN", 60]]']),
                          TIMES, st.text(max_size=6), st.text(max_size=6), st.one_of(st.none(), st.text(max_size=4)),
                          st.integers(0, 10**9), st.integers(0, 2**40), st.text(max_size=6), st.integers(0, 9),
                          st.sampled_from(["rated", "unrated"]), st.text(max_size=8)), max_size=12))
def test_a_chunks_parameters_are_the_python_loops(entries: list[tuple[Any, ...]]) -> None:
    assert _copytext.sqlite_ledger_params(entries, _sqlite_time, ledger_key) == python_params(entries)


def test_a_row_of_another_shape_leaves_the_chunk_to_the_python_loop() -> None:
    row = ("mno", "id", "33", "2026-12", "EUR", 1, "[]", None, "voice", "", "", 0, 1, "TP", 1, "rated", "")
    assert _copytext.sqlite_ledger_params([row, row[:-1]], _sqlite_time, ledger_key) is None
    assert _copytext.sqlite_ledger_params([row, list(row)], _sqlite_time, ledger_key) is None
    assert _copytext.sqlite_ledger_params([row], _sqlite_time, ledger_key) == python_params([row])
