"""The fast path's block splitter: a block of plain CSV lines straight into the columns a layout uses.

``_csvblock`` is a small C extension (``_csvblock.c``, built by ``pip install``).
It accepts a block only where its answer is the one ``csv.reader`` would give
(one record per line, quotes closed on their line, the file's column count,
the used columns valid text: bytes that are not, in a column nobody reads, do not
matter) and returns ``None`` otherwise; the pipeline then reads that block
with ``csv.reader``, which finds and reports the problem record by record.  So
the splitter changes speed, never results: a build without it (no compiler)
mediates the same, only slower, and the differential tests hold the two to each
other.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from typing import Callable, Sequence

from engine.mediation.layout import Layout

try:
    from engine.mediation._csvblock import count_lines as _count_lines
    from engine.mediation._csvblock import split_block as _split_block
except ImportError:  # pragma: no cover - a build without a C compiler
    _split_block = _count_lines = None

_split: Callable[..., tuple[int, list[list[str]]] | None] | None = _split_block


def count_newlines(data: bytes) -> int:
    """``data.count(b"\\n")``, with memchr when the extension is there (several times faster)."""
    return _count_lines(data) if _count_lines is not None else data.count(b"\n")

# encodings in which every ASCII byte is that ASCII character: the splitter reads bytes
_UTF8 = {"utf-8", "utf-8-sig"}
_ASCII_COMPATIBLE = _UTF8 | {"ascii", "iso8859-1", "iso8859-15", "cp1252", "cp1250", "cp1251", "cp1253", "cp1254"}


def available() -> bool:
    """True when the C splitter was built."""
    return _split is not None


@dataclass(frozen=True)
class BlockSplitter:
    delimiter: int
    quotechar: int
    columns: int
    used: tuple[int, ...]
    max_line: int
    utf8: bool
    encoding: str = "utf-8"
    absent: tuple[int, ...] = ()     # used columns past the file's width (optional ones it leaves out): empty
    ascii_only: bool = False         # some used column has its own encoding: the mapper re-reads it, so only ASCII blocks

    @classmethod
    def for_layout(cls, layout: Layout, columns: int, used: Sequence[int]) -> BlockSplitter | None:
        """A splitter for this layout's dialect and a file of ``columns`` columns, or None when only
        csv.reader can read it."""
        read = layout.read
        present = tuple(sorted(i for i in set(used) if i < columns))
        if _split is None or read.skip_initial_space or not present or read.format != "csv":
            return None
        if len(read.delimiter) != 1 or len(read.quotechar) != 1 or read.delimiter == read.quotechar:
            return None
        if ord(read.delimiter) > 127 or ord(read.quotechar) > 127 or read.delimiter in "\r\n" or read.quotechar in "\r\n":
            return None
        try:
            encoding = codecs.lookup(read.encoding).name
        except LookupError:
            return None
        if encoding not in _ASCII_COMPATIBLE:
            return None
        utf8 = encoding in _UTF8
        return cls(ord(read.delimiter), ord(read.quotechar), columns, present, read.max_field_bytes, utf8,
                   "utf-8" if utf8 else encoding, tuple(sorted(i for i in set(used) if i >= columns)), bool(layout.column_encodings))

    def split(self, data: bytes) -> dict[int, list[str]] | None:
        """Column index -> values, one per line of ``data``; None when the block needs csv.reader.

        The used columns are decoded strictly (a bad byte in one of them sends the block to
        csv.reader, which rejects that record); the other columns are never decoded."""
        assert _split is not None
        ascii = data.isascii()
        if not ascii and self.ascii_only:
            return None
        # no line (so no field) over csv's field size limit: csv.reader refuses such fields
        max_line = min(self.max_line, csv.field_size_limit())
        got = _split(data, self.delimiter, self.quotechar, self.columns, self.used, max_line, self.utf8, ascii)
        if got is None:
            return None
        out = dict(zip(self.used, got[1]))
        for i in self.absent:
            out[i] = [""] * got[0]
        return out
