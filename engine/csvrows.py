"""The records of a UTF-8 CSV file, as ``csv.reader`` gives them, read in chunks with their line numbers.

Rating a CDR file (``rulebill replay``, what-if) spent a third of its time in
``csv.reader``.  Here the file is read in blocks of whole lines and a block is
split by the mediation's C block splitter (:mod:`engine.mediation.csvblock`),
which accepts a block only where its answer is the one ``csv.reader`` would
give (one record per line of the header's width, quotes closed on their line,
no NUL, no bare CR, valid UTF-8).  From the first block it does not accept to
the end of the file, ``csv.reader`` reads on (it finds and reports what is
unusual: a record of another width, a field over its size limit, a bad byte),
so the records are always those ``csv.reader`` reads, only faster.  A build
without the C extension reads with ``csv.reader`` throughout.

The records of a plain block are given as they were split, one list per column
(:class:`engine.columns.ColumnRows`): rating reads the cells it needs from the
columns, and a row tuple is built only for a row something asks for.
"""

from __future__ import annotations

import csv
import io
from itertools import islice
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

from engine.cdr import COLUMNS
from engine.columns import ColumnRows

try:
    from engine.mediation._csvblock import split_block as _split_block
except ImportError:  # pragma: no cover - a build without a C compiler
    _split_block = None

_split: Any = _split_block
BLOCK_BYTES = 1 << 20   # about 8,000 CDR lines: a block's text and rows stay in the CPU caches
BLOCK_ROWS = 8192
_COMMA, _QUOTE = ord(","), ord('"')


class CsvRows:
    """``CsvRows(binary_stream)``: :attr:`header` (the first record, ``[]`` for an empty file), then
    :meth:`chunks` of the records after it."""

    def __init__(self, stream: IO[bytes], block_bytes: int = 0) -> None:
        self._stream = stream
        self._block = block_bytes or BLOCK_BYTES
        self._lines = 0            # physical lines consumed by the block path (the header's included)
        self._reader: Any = None   # csv.reader from the first block the splitter did not take
        self._carry = b""
        first = stream.readline()
        header = _plain_record(first) if _split is not None else None
        if header is None:
            record: Any = next(self._switch(0), None)
            self.header: list[str] = record or []
        else:
            self.header, self._lines = header, 1

    def _switch(self, offset: int) -> Any:
        """Read on with csv.reader from ``offset`` (the start of a line; the lines before it were read here)."""
        self._stream.seek(offset)
        self._reader = csv.reader(io.TextIOWrapper(self._stream, encoding="utf-8", newline=""))
        return self._reader

    def _pieces(self, size: int) -> Iterator[tuple[int | list[int], Sequence[Sequence[str]]]]:
        """(line of the first record, its records as :class:`ColumnRows`) per block; (line of every record, records)
        from csv.reader."""
        width = len(self.header)
        used = tuple(range(width))
        limit = csv.field_size_limit()   # no line longer than a field may be: csv.reader refuses such fields
        stream = self._stream
        offset = stream.tell()
        while self._reader is None:
            more = stream.read(self._block)
            data = self._carry + more
            if not more:   # the end of the file: the last line may have no line end
                if not data:
                    return
                block, self._carry = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:   # no line end yet: read on
                    self._carry = data
                    continue
                block, self._carry = data[:cut], data[cut:]
            got = _split(block, _COMMA, _QUOTE, width, used, limit, True, block.isascii()) if width else None
            if got is None:
                self._switch(offset)
                break
            count, columns = got
            yield self._lines + 1, ColumnRows(columns, count)
            self._lines += count
            offset += len(block)
        reader: Any = self._reader
        before = self._lines
        while True:
            rows: list[Sequence[str]] = []
            lines: list[int] = []
            for row in islice(reader, size):
                rows.append(row)
                lines.append(before + reader.line_num)
            if not rows:
                return
            yield lines, rows

    def chunks(self, size: int) -> Iterator[tuple[list[int], Sequence[Sequence[str]]]]:
        """The records after the header, at most ``size`` at a time, each with its line.  The records of a plain
        block come as :class:`ColumnRows` (never built as row tuples unless asked for), a block at a time (a chunk
        of a block is never merged with the next: copying the columns would touch every cell again); those
        csv.reader reads come as lists of ``size``."""
        rows: list[Sequence[str]] = []
        lines: list[int] = []
        for where, got in self._pieces(size):
            if isinstance(got, ColumnRows) and isinstance(where, int):
                first = where
                for at in range(0, len(got), size):
                    part = got if len(got) <= size else got[at:at + size]
                    yield list(range(first + at, first + at + len(part))), part
                continue
            lines.extend([where] if isinstance(where, int) else where)
            rows.extend(got)
            while len(rows) >= size:
                yield lines[:size], rows[:size]
                del lines[:size], rows[:size]
        if rows:
            yield lines, rows


class CdrFile:
    """The rows of a normalised CDR file (:mod:`engine.cdr`) in the layout's column order, as the evaluator reads
    them, in chunks (``what_if`` takes it as it is) or one by one.  A header in another order is mapped (a column it
    lacks is empty); a row of another width than the header is given as it is (the evaluator rejects it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def chunks(self, size: int) -> Iterator[Sequence[Sequence[str]]]:
        with self.path.open("rb") as stream:
            records = CsvRows(stream)
            header = records.header
            where = None if tuple(header) == COLUMNS else [header.index(c) if c in header else -1 for c in COLUMNS]
            for _lines, rows in records.chunks(size):
                if where is None:
                    yield rows
                elif isinstance(rows, ColumnRows):   # every row of the header's width: the columns reordered
                    n = len(rows)
                    yield ColumnRows([rows.columns[i] if i >= 0 else [""] * n for i in where], n)
                else:
                    yield [row if len(row) != len(header) else [row[i] if i >= 0 else "" for i in where] for row in rows]

    def __iter__(self) -> Iterator[Sequence[str]]:
        for rows in self.chunks(BLOCK_ROWS):
            yield from rows


def _plain_record(line: bytes) -> list[str] | None:
    """The one record of a first line, when csv.reader would read it from that line alone."""
    if not line.endswith(b"\n") or b'"' in line or b"\r" in line[:-2] or b"\0" in line:
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    records = list(csv.reader(io.StringIO(text, newline="")))
    return records[0] if len(records) == 1 and records[0] else None


__all__ = ["BLOCK_BYTES", "CdrFile", "CsvRows"]
