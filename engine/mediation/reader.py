"""Bytes in, blocks of whole lines out: the streaming front of the CSV pipeline.

:class:`BlockReader` reads a binary stream in blocks (128 KiB by default) and cuts
each block after its last line break.  A block is kept as bytes; its text lines
are only made when the pipeline reads it with ``csv.reader`` (``text_lines``):
the fast path splits the bytes itself and never needs them.  Each block starts
at a record boundary: when a quoted field runs past the end of a block, the
pipeline hands the unfinished record back (``give_back``) and it starts the next
block.  The reader keeps the last few blocks so that the original bytes, line
number and byte offset of any recent record can be recovered for a reject
without keeping the file in memory.

Lines that need a closer look are flagged in ``alert`` (a one-item list the
pipeline polls per record) when a block's text is made: bytes that are not valid
in the declared encoding (decoded with ``surrogateescape`` so they round-trip
exactly; the pipeline rejects a record for them only in a column it reads),
physical lines longer than ``max_record_bytes`` (cut, the rest skipped
up to the next line break) and lines long enough to hold a field over
``max_field_bytes``.
"""

from __future__ import annotations

import re
from collections import deque
from itertools import accumulate
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Protocol

from engine.mediation.csvblock import count_newlines

# splitlines() also breaks at these; csv does not, so blocks holding them are split by hand
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
ESCAPED = re.compile("[\udc80-\udcff]")   # bytes not valid in the encoding, kept by surrogateescape


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _count_lines(data: bytes) -> int:
    """Physical lines in ``data``: breaks are \\n, \\r\\n and \\r (as csv and ``bytes.splitlines`` see them)."""
    if b"\r" in data:
        return len(data.splitlines())
    return count_newlines(data) + (0 if not data or data.endswith(b"\n") else 1)


@dataclass
class Block:
    first_line: int              # global 1-based number of the block's first line
    data: bytes                  # the block's bytes (for a cut line: its kept head and a line break)
    offset: int                  # byte offset of data[0] in the file
    count: int                   # physical lines in data
    tainted: set[int] = field(default_factory=set)       # line numbers holding undecodable bytes
    oversize: dict[int, int] = field(default_factory=dict)  # line number -> true byte length (line was cut)
    lines: list[str] | None = None   # the decoded lines, made on demand (``BlockReader.text_lines``)
    _raw_lines: list[bytes] | None = None
    _ends: list[int] | None = None

    @property
    def last_line(self) -> int:
        return self.first_line + self.count - 1

    def raw_lines(self) -> list[bytes]:
        if self._raw_lines is None:
            self._raw_lines = self.data.splitlines(True)
        return self._raw_lines

    def line_ends(self) -> list[int]:
        """Byte offset just after each line (computed once, only when needed)."""
        if self._ends is None:
            if self.oversize:
                self._ends = [self.offset + self.oversize[self.first_line]]
            else:
                self._ends = list(accumulate(map(len, self.raw_lines()), initial=self.offset))[1:]
        return self._ends

    def truncate(self, count: int) -> bytes:
        """Keep the first ``count`` lines; returns the bytes of the lines dropped."""
        cut = self.line_ends()[count - 1] - self.offset if count else 0
        rest = self.data[cut:]
        self.data = self.data[:cut]
        self.count = count
        if self.lines is not None:
            self.lines = self.lines[:count]
        self._raw_lines = self._ends = None
        self.tainted = {n for n in self.tainted if n <= self.last_line}
        return rest


class BlockReader:
    def __init__(
        self,
        stream: BinaryIO,
        encoding: str = "utf-8",
        *,
        block_size: int = 1 << 17,
        max_record_bytes: int = 1 << 20,
        max_field_bytes: int = 65536,
        start_offset: int = 0,
        start_line: int = 0,
        keep_blocks: int = 4,
    ) -> None:
        self.stream: _Readable = stream
        self.bom = encoding == "utf-8-sig"
        self.encoding = "utf-8" if self.bom else encoding
        self.block_size = max(block_size, 1024)
        self.max_record = max_record_bytes
        self.max_field = max_field_bytes
        self.offset = start_offset        # bytes handed out in blocks so far (less what came back)
        self.next_line = start_line + 1
        self.window: deque[Block] = deque()
        self.keep_blocks = keep_blocks
        # the pipeline may still need lines from here on (a batch being mapped); older blocks may go
        self.keep_from = 1 << 62
        self.alert = [0]                  # last line number that needs a closer look, 0 if none pending
        self.bytes_read = 0
        self.eof = False                  # the stream is exhausted: the block just handed out is the last
        self._returned = b""              # bytes the pipeline gave back, to start the next block

    # -------------------------------------------------------------- handing out blocks

    def blocks(self) -> Iterator[Block]:
        """Blocks of whole lines, in file order."""
        carry = b""
        first = self.offset == 0
        while True:
            data = self.stream.read(self.block_size)
            self.bytes_read += len(data)
            if first and data:
                first = False
                if self.bom and data.startswith(b"\xef\xbb\xbf"):
                    data = data[3:]
                    self.offset += 3
            if self._returned:
                carry, self._returned = self._returned + carry, b""
            if not data:
                self.eof = True
                if carry:
                    yield self._block(carry)
                return
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n") + 1 or buf.rfind(b"\r") + 1
            if cut == 0:
                if len(buf) > self.max_record:
                    yield self._oversize(buf)
                    carry = b""
                else:
                    carry = buf
                continue
            carry = buf[cut:]
            yield self._block(buf[:cut] if carry else buf)

    def give_back(self, from_line: int) -> None:
        """Lines ``from_line`` on of the last block (an unfinished record) start the next block instead."""
        block = self.window[-1]
        if not block.first_line <= from_line <= block.last_line or block.oversize:
            raise ValueError(f"line {from_line} is not in the last block")
        rest = block.truncate(from_line - block.first_line)
        if not block.count:
            self.window.pop()
        self._returned = rest + self._returned
        self.offset -= len(rest)
        self.next_line = from_line

    def _block(self, data: bytes) -> Block:
        block = Block(self.next_line, data, self.offset, _count_lines(data))
        self._add(block, len(data))
        return block

    def text_lines(self, block: Block) -> list[str]:
        """The block's lines as text (for csv.reader), flagging the lines that need a closer look."""
        if block.lines is not None:
            return block.lines
        data = block.data
        tainted = False
        try:
            text = data.decode(self.encoding)
        except UnicodeDecodeError:
            text = data.decode(self.encoding, "surrogateescape")
            tainted = True
        lines = text.splitlines(True)
        if len(lines) != text.count("\n") + (not text.endswith("\n")) or "\r" in text and len(lines) != len(_LINE.findall(text)):
            lines = _LINE.findall(text)
        block.lines = lines
        if tainted:
            block.tainted = {n for n, line in enumerate(lines, block.first_line) if ESCAPED.search(line)}
        if block.oversize:
            self.alert[0] = max(self.alert[0], block.first_line)
        elif lines and max(map(len, lines)) > self.max_field:
            # a field this long can only sit on a long line: rows touching these lines get checked
            self.alert[0] = max(self.alert[0], block.last_line)
        elif block.tainted:
            self.alert[0] = max(self.alert[0], max(block.tainted))
        return lines

    def _oversize(self, head: bytes) -> Block:
        """A physical line longer than max_record_bytes: keep its head, skip to the next line break."""
        total = len(head)
        while True:
            data = self.stream.read(self.block_size)
            self.bytes_read += len(data)
            if not data:
                rest = b""
                break
            nl = data.find(b"\n")
            if nl >= 0:
                total += nl + 1
                rest = data[nl + 1:]
                break
            total += len(data)
        block = Block(self.next_line, head[: self.max_record] + b"\n", self.offset, 1)
        block.oversize[block.first_line] = total
        self._add(block, total)
        if rest:
            # the bytes after the cut line start the next block: hand them back to the stream reader
            self.stream = _Prefixed(rest, self.stream)
        return block

    def _add(self, block: Block, nbytes: int) -> None:
        window = self.window
        window.append(block)
        while len(window) > self.keep_blocks and window[0].last_line < self.keep_from:
            window.popleft()
        self.offset += nbytes
        self.next_line += block.count

    # -------------------------------------------------------------- recovering records

    def _blocks_for(self, first: int, last: int) -> list[Block]:
        return [b for b in self.window if b.last_line >= first and b.first_line <= last]

    def raw(self, first: int, last: int, limit: int) -> tuple[bytes, int, bool]:
        """Original bytes of lines ``first..last`` (1-based, inclusive), their offset and whether cut short."""
        parts: list[bytes] = []
        offset = -1
        size = 0
        truncated = False
        for block in self._blocks_for(first, last):
            lo, hi = max(first, block.first_line), min(last, block.last_line)
            if offset < 0:
                ends = block.line_ends()
                offset = ends[lo - block.first_line - 1] if lo > block.first_line else block.offset
                if lo > first:
                    truncated = True   # the start of the record left the window
            lines = block.raw_lines()
            for n in range(lo, hi + 1):
                data = lines[n - block.first_line]
                if n in block.oversize:
                    truncated = True
                if size + len(data) > limit:
                    parts.append(data[: limit - size])
                    return b"".join(parts), offset, True
                parts.append(data)
                size += len(data)
        return b"".join(parts), max(offset, 0), truncated

    def offset_after(self, line: int) -> int:
        """Byte offset just after line ``line`` (the resume point after a committed record)."""
        for block in self.window:
            if block.first_line <= line <= block.last_line:
                return block.line_ends()[line - block.first_line]
        if self.window and line < self.window[0].first_line:
            if line == self.window[0].first_line - 1:
                return self.window[0].offset
            raise ValueError(f"line {line} has left the read window")
        return self.offset

    def inspect(self, first: int, last: int) -> tuple[str, str, int] | None:
        """Why lines ``first..last`` cannot be a record at all (a line cut for its size): (code, message,
        byte offset) or ``None``.  Bytes invalid in the encoding are the pipeline's to judge, column by
        column (:meth:`tainted`)."""
        for block in self._blocks_for(first, last):
            for n in range(max(first, block.first_line), min(last, block.last_line) + 1):
                if n in block.oversize:
                    return ("record.too-large", f"line is {block.oversize[n]} bytes, over the {self.max_record}-byte limit", self._line_start(block, n))
        if last >= self.alert[0]:
            self.alert[0] = 0
        return None

    def tainted(self, first: int, last: int) -> bool:
        """Whether lines ``first..last`` hold bytes that are not valid in the encoding."""
        return any(n in block.tainted for block in self._blocks_for(first, last)
                   for n in range(max(first, block.first_line), min(last, block.last_line) + 1))

    def _line_start(self, block: Block, n: int) -> int:
        i = n - block.first_line
        return block.line_ends()[i - 1] if i else block.offset


class _Prefixed:
    """A stream with some bytes put back in front."""

    def __init__(self, head: bytes, stream: _Readable) -> None:
        self.head = head
        self.stream = stream

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head[:n] if n >= 0 else self.head, self.head[n:] if n >= 0 else b""
            return out
        return self.stream.read(n)
