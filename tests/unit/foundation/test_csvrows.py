"""engine.csvrows reads the records csv.reader reads, with the same line numbers, whatever the blocks: the C block
splitter takes plain blocks, csv.reader the rest of the file from the first block it does not (hypothesis over files
with quoted fields, line breaks inside quotes, CRLF, blank lines, rows of another width, non-ASCII text)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import csvrows
from engine.cdr import COLUMNS
from engine.columns import ColumnRows, column_of, take_rows
from engine.csvrows import CdrFile, CsvRows

_FIELD = st.one_of(st.sampled_from(["", "0", "1", "voice", "33612000001", "2026-03-02T10:00:00Z", "é", "a b"]),
                   st.text(alphabet="ab,\"\r\n 1é", max_size=6))


def _line(fields: list[str], crlf: bool) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if crlf else "\n").writerow(fields)
    return out.getvalue()


@st.composite
def _files(draw: Any) -> str:
    width = draw(st.integers(1, 5))
    lines = [_line([f"c{i}" for i in range(width)], False)]
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["plain"] * 6 + ["odd", "width", "blank", "crlf"]))
        if kind == "plain":
            lines.append(_line(draw(st.lists(st.sampled_from(["", "0", "voice", "33612000001", "é"]), min_size=width, max_size=width)), False))
        elif kind == "odd":
            lines.append(_line(draw(st.lists(_FIELD, min_size=width, max_size=width)), draw(st.booleans())))
        elif kind == "width":
            lines.append(_line(draw(st.lists(_FIELD, min_size=1, max_size=7)), False))
        elif kind == "blank":
            lines.append("\n")
        else:
            lines.append(_line(draw(st.lists(_FIELD, min_size=width, max_size=width)), True))
    text = "".join(lines)
    return text[:-1] if text.endswith("\n") and draw(st.booleans()) else text   # a last line without its line end


def _reference(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    header = next(reader, None) or []
    return header, [(reader.line_num, row) for row in reader]


def _read(data: bytes, size: int, block: int = 0) -> tuple[list[str], list[tuple[int, list[str]]]]:
    records = CsvRows(io.BytesIO(data), block)
    got = [(line, list(row)) for lines, rows in records.chunks(size) for line, row in zip(lines, rows)]
    return records.header, got


@settings(max_examples=300, deadline=None)
@given(text=_files(), block=st.sampled_from([8, 17, 64, 1 << 20]), size=st.sampled_from([1, 2, 5, 50_000]))
def test_the_records_and_line_numbers_are_csv_readers(text: str, block: int, size: int) -> None:
    data = text.encode("utf-8")
    assert _read(data, size, block) == _reference(data)


@pytest.mark.parametrize("data", [b"", b"a,b\n", b"a,b", b"\xef\xbb\xbfa,b\n1,2\n", b"a,b\r\n1,2\r\n3,4", b'"a\nb",c\n1,2\n',
                                  b"a,b\n1,2\n\n3,4\n", b"a,b\n1,\"x\ny\"\n5,6\n"])
def test_edge_files(data: bytes) -> None:
    assert _read(data, 2, 4) == _reference(data)


def test_a_bad_byte_fails_as_csv_reader_fails() -> None:
    data = b"a,b\n1,2\n3,\xff\n"
    with pytest.raises(UnicodeDecodeError):
        _reference(data)
    with pytest.raises(UnicodeDecodeError):
        _read(data, 10)


def test_plain_blocks_are_split_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    if csvrows._split is None:
        pytest.skip("the C extension was not built")
    calls: list[int] = []
    real = csvrows._split
    monkeypatch.setattr(csvrows, "_split", lambda data, *a: calls.append(len(data)) or real(data, *a))
    records = CsvRows(io.BytesIO(b"a,b\n" + b"1,2\n" * 20), 16)
    got = [(line, list(row)) for lines, rows in records.chunks(7) for line, row in zip(lines, rows)]
    assert records.header == ["a", "b"] and len(got) == 20 and got[-1] == (21, ["1", "2"])
    assert len(calls) > 1 and records._reader is None   # every block split in C, csv.reader never needed


def test_a_cdr_file_in_another_column_order_is_mapped(tmp_path: Path) -> None:
    path = tmp_path / "cdrs.cdr.csv"
    path.write_text("service,cdr_id,b_number\nvoice,x1,336\nsms,x2\n")
    rows = [list(r) for r in CdrFile(path)]
    first = [""] * len(COLUMNS)
    first[COLUMNS.index("service")], first[COLUMNS.index("cdr_id")], first[COLUMNS.index("b_number")] = "voice", "x1", "336"
    assert rows == [first, ["sms", "x2"]]   # a row of another width is given as it is (the evaluator rejects it)


def test_plain_blocks_come_as_columns_and_a_cdr_file_maps_them(tmp_path: Path) -> None:
    if csvrows._split is None:
        pytest.skip("the C extension was not built")
    path = tmp_path / "cdrs.cdr.csv"
    path.write_text("service,cdr_id,b_number\n" + "".join(f"voice,x{n},336{n}\n" for n in range(50)))
    with path.open("rb") as f:
        chunks = list(CsvRows(f, 64).chunks(7))
    assert all(isinstance(rows, ColumnRows) and len(rows) <= 7 for _lines, rows in chunks)
    assert [line for lines, _rows in chunks for line in lines] == list(range(2, 52))
    got = [rows for rows in CdrFile(path).chunks(20)]
    assert all(isinstance(rows, ColumnRows) for rows in got)
    at = {name: COLUMNS.index(name) for name in ("service", "cdr_id", "b_number")}
    flat = [row for rows in got for row in rows]
    assert len(flat) == 50 and all(len(row) == len(COLUMNS) for row in flat)
    assert [(r[at["service"]], r[at["cdr_id"]], r[at["b_number"]]) for r in flat] == [("voice", f"x{n}", f"336{n}") for n in range(50)]
    assert all(r[COLUMNS.index("a_number")] == "" for r in flat)   # a column the file lacks is empty


def test_rows_held_as_columns_behave_as_a_sequence_of_rows() -> None:
    rows = [("a", "1"), ("b", "2"), ("c", "3")]
    held = ColumnRows([["a", "b", "c"], ["1", "2", "3"]], 3)
    assert len(held) == 3 and list(held) == rows and held[1] == rows[1] and held[-1] == rows[-1]
    assert list(held[1:]) == rows[1:] and len(held[1:]) == 2
    with pytest.raises(IndexError):
        held[3]
    assert column_of(held, 1) == ["1", "2", "3"] and column_of(rows, 0) == ["a", "b", "c"]
    assert list(take_rows(held, [True, False, True])) == [rows[0], rows[2]] == take_rows(rows, [1, 0, 1])


def test_the_block_splitter_is_found_whatever_is_imported_first() -> None:
    """engine.csvrows falls back to csv.reader when the C splitter cannot be imported; an import cycle (the evaluator
    importing the CSV reading, which imports the mediation package, which imports the evaluator) once made that
    happen silently.  In a fresh interpreter, whichever module comes first, the splitter must be there."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("engine.mediation._csvblock") is None:
        pytest.skip("the C extension was not built")
    for first in ("engine.csvrows", "engine.rating.evaluator", "engine.replay", "engine.rating.whatif"):
        code = f"import {first}, engine.csvrows as c; assert c._split is not None"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])
