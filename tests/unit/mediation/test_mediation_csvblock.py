"""The C block splitter against csv.reader: where it answers, it answers as csv.reader does.

The pipeline trusts ``split_block`` only because of these properties: over random blocks
(quotes, delimiters, line breaks, CRs, NULs, spaces, non-ASCII and invalid UTF-8) any
answer other than ``None`` equals csv.reader's rows for the used columns, and plain
blocks, as csv.writer writes them, are always taken.
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.mediation import csvblock

pytestmark = pytest.mark.skipif(not csvblock.available(), reason="the C extension is not built (test_mediation_pipeline says so)")


def _split(data: bytes, ncols: int, used: tuple[int, ...], *, delimiter: str = ",", max_line: int = 1 << 20, utf8: bool = True):
    assert csvblock._split is not None
    return csvblock._split(data, ord(delimiter), ord('"'), ncols, used, max_line, utf8, data.isascii())


def _reference(data: bytes, delimiter: str = ",", encoding: str = "utf-8") -> list[list[str]] | None:
    """csv.reader, as the pipeline's slow path runs it: None when it raises or sees a blank line."""
    text = data.decode(encoding, "surrogateescape")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True, strict=True))
    except csv.Error:
        return None
    return rows


def test_plain_block_is_split_into_the_used_columns() -> None:
    data = b'"acct","0770",x\n"a ""b"" c",,"z"\r\nlast,"",1'
    assert _split(data, 3, (0, 2)) == (3, [["acct", 'a "b" c', "last"], ["x", "z", "1"]])


@pytest.mark.parametrize(
    "data",
    [
        b'"abc"x,b,c\n',        # text after a closing quote
        b'"a" ,b,c\n',          # a space after a closing quote
        b'a,b,"c\n',            # a quote that never closes
        b'"a\nb",c,d\n',        # a line break inside quotes
        b"a,b\n",               # too few columns
        b"a,b,c,d\n",           # too many
        b"a,b,c\n\nd,e,f\n",    # a blank line
        b"a,b,c\rd,e,f\n",      # a bare CR
        b"a,\x00,c\n",          # a NUL byte
        b"a,\xff,c\n",          # invalid UTF-8 in a used column
    ],
)
def test_anything_but_the_plain_case_is_left_to_csv_reader(data: bytes) -> None:
    assert _split(data, 3, (0, 1, 2)) is None


def test_invalid_utf8_only_matters_in_a_used_column() -> None:
    splitter = csvblock.BlockSplitter(ord(","), ord('"'), 3, (0,), 1 << 20, True)
    assert splitter.split(b"a,\xff,c\n") == {0: ["a"]}        # a Latin-1 byte nobody reads
    assert splitter.split("a,é,c\n".encode()) == {0: ["a"]}
    assert splitter.split(b"\xff,b,c\n") is None               # in a used column: csv.reader's way rejects it
    with_own_encoding = csvblock.BlockSplitter(ord(","), ord('"'), 3, (0,), 1 << 20, True, ascii_only=True)
    assert with_own_encoding.split("a,é,c\n".encode()) is None    # the mapper re-reads such columns: only ASCII here


def test_optional_columns_a_file_leaves_out_come_back_empty() -> None:
    splitter = csvblock.BlockSplitter(ord(","), ord('"'), 2, (0,), 1 << 20, True, absent=(2,))
    assert splitter.split(b"a,b\nc,d\n") == {0: ["a", "c"], 2: ["", ""]}


def test_long_lines_are_left_to_csv_reader() -> None:
    line = b"a," + b"x" * 100 + b",c\n"
    assert _split(line, 3, (0,), max_line=len(line)) is not None
    assert _split(line, 3, (0,), max_line=len(line) - 1) is None


def test_non_utf8_layouts_take_ascii_only() -> None:
    assert _split("a,é,c\n".encode("latin-1"), 3, (0, 1), utf8=False) is None
    assert _split(b"a,e,c\n", 3, (0, 1), utf8=False) == (1, [["a"], ["e"]])


def test_count_lines() -> None:
    assert csvblock.count_newlines(b"") == 0
    assert csvblock.count_newlines(b"a\nb\r\nc") == 2


_ALPHABET = st.sampled_from(["a", "7", " ", ",", ";", '"', '""', "\n", "\r\n", "\r", "\x00", "é", "\udcff"])


@st.composite
def _blocks(draw: st.DrawFn) -> tuple[bytes, int]:
    ncols = draw(st.integers(1, 5))
    pieces = draw(st.lists(_ALPHABET, max_size=60))
    text = "".join(pieces)
    return text.encode("utf-8", "surrogateescape"), ncols


@st.composite
def _damaged_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """csv.writer output with a few characters of the alphabet put in or taken out: mostly plain."""
    ncols = draw(st.integers(1, 5))
    rows = draw(st.lists(st.lists(st.sampled_from(["", "a", "b c", 'q"x', "x,y", "é", " 7"]), min_size=ncols, max_size=ncols), min_size=1, max_size=8))
    out = io.StringIO(newline="")
    csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])), lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(rows)
    text = out.getvalue()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(_ALPHABET) + text[at:]
        else:
            text = text[:at] + text[at + 1 :]
    return text.encode("utf-8", "surrogateescape"), ncols


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(_blocks(), _damaged_files()), delimiter=st.sampled_from([",", ";"]), data=st.data())
def test_random_blocks_agree_with_csv_reader(case: tuple[bytes, int], delimiter: str, data: st.DataObject) -> None:
    block, ncols = case
    used = tuple(sorted(data.draw(st.sets(st.integers(0, ncols - 1), min_size=1))))
    splitter = csvblock.BlockSplitter(ord(delimiter), ord('"'), ncols, used, 1 << 20, True)
    got = splitter.split(block)
    if got is None:
        return
    # the used columns are valid text (invalid bytes elsewhere are nobody's concern); the rest as csv.reader reads it
    assert not any("\udc80" <= ch <= "\udcff" for col in got.values() for v in col for ch in v)
    rows = _reference(block, delimiter)
    assert rows is not None, "split a block csv.reader refuses"
    assert all(len(r) == ncols for r in rows)
    assert len(rows) == csvblock.count_newlines(block) + (0 if block.endswith(b"\n") or not block else 1)
    assert got == {i: [r[i] for r in rows] for i in used}


_VALUE = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=12)


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(st.lists(_VALUE, min_size=3, max_size=3), min_size=1, max_size=30),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]), crlf=st.booleans())
def test_plain_files_are_always_taken(rows: list[list[str]], quoting: int, crlf: bool) -> None:
    out = io.StringIO(newline="")
    csv.writer(out, quoting=quoting, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    block = out.getvalue().encode()
    got = _split(block, 3, (0, 1, 2))
    assert got is not None
    assert got == (len(rows), [[r[i] for r in rows] for i in range(3)])


def test_used_columns_must_be_distinct_and_in_range() -> None:
    assert csvblock._split is not None
    for used in [(0, 0), (3,), (-1,), (0,) * 1100]:
        with pytest.raises(ValueError):
            csvblock._split(b"a,b,c\n", 44, 34, 3, used, 100, True, True)


def test_fields_over_csvs_field_size_limit_are_left_to_csv_reader() -> None:
    splitter = csvblock.BlockSplitter(ord(","), ord('"'), 1, (0,), 1 << 22, True)
    over = b"x" * (csv.field_size_limit() + 1) + b"\n"
    assert splitter.split(over) is None
    assert _reference(over) is None   # csv.reader refuses it: field larger than field limit
    assert splitter.split(b"x" * 1000 + b"\n") == {0: ["x" * 1000]}


@pytest.mark.parametrize("encoding, bad", [("ascii", b"\xe9"), ("cp1252", b"\x81")])
def test_bytes_the_encoding_refuses_matter_only_in_used_columns(encoding: str, bad: bytes) -> None:
    splitter = csvblock.BlockSplitter(ord(","), ord('"'), 3, (0,), 1 << 20, False, encoding)
    assert splitter.split(b"a," + bad + b",c\n") == {0: ["a"]}
    assert splitter.split(bad + b",b,c\n") is None
    assert splitter.split(b"a,b,c\n") == {0: ["a"]}
    if encoding == "cp1252":
        assert splitter.split(b"a,\xe9,c\n") == {0: ["a"]}      # valid in cp1252, in a column not used
        assert splitter.split(b"\xe9,b,c\n") is None               # in a used column: csv.reader decodes it
