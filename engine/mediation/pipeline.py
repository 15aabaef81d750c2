"""The mediation pipeline: one CSV file in, every record accounted for exactly once.

Each record ends in one place: normalised, filtered (by which filter), rejected
(reason, original bytes, line, byte offset), duplicate, or aggregated into another
record's CDR (partials).  Work is committed in chunks through a
:class:`MediationSink`, each chunk with a checkpoint, so a crashed run resumes
where the last commit left it and the stored result equals one clean run.

Memory stays bounded whatever the file size: bytes are read block by block,
duplicates are found per chunk plus through the :class:`SeenCdrIds` port (the
store), and only open partial calls are held across chunks.

Speed: the file is read block by block (each block starts at a record boundary).
A block of plain lines is split in C straight into the used columns
(``csvblock.py``) and mapped column by column (``batch.py``).  Any other block is
read with ``csv.reader``: its records are mapped in batches, a batch holding
anything unusual is retried in small pieces and, for the pieces that still fail,
record by record through the generated mapper (``mapper.py``), which is also the
reference the differential tests hold the other paths to.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Callable

from engine import cancellation
from engine.gcpause import collector_paused
from engine.mediation.csvblock import BlockSplitter
from engine.mediation.keyvalue import KeyValueReader
from engine.mediation.layout import Layout
from engine.mediation.legs import NO_BILLABLE_LEG, LegOutcome, LegPairer
from engine.mediation.mapper import CompiledLayout, PartialInfo, compile_layout
from engine.mediation.outcome import NON_BILLABLE_LEG, FileProblem, ReconciliationSummary, RejectedRecord
from engine.mediation.partials import PartialAssembler
from engine.mediation.ports import Checkpoint, MediationChunk, MediationSink, PendingRecord, SeenCdrIds, mediation_id
from engine.mediation.problems import FieldError, FileLevelError
from engine.mediation.reader import ESCAPED, Block, BlockReader
from engine.mediation.rows import CdrRow
from engine.mediation.sources import Source
from engine.mediation.tenants import SubscriberTenants

Progress = Callable[[int], None]  # bytes read so far
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_BATCH = 2048  # records per column-at-a-time batch
_BATCH_BYTES = 4 << 20  # ... and about this many bytes at most
_PIECE = 64     # a batch with an unusual record is retried in pieces this big


def file_id_of(path: Path | str) -> str:
    """SHA-256 of the content (with the layout and source, the identity of a mediation: :func:`mediation_id`)."""
    with open(path, "rb") as stream:   # file_digest reads into one reused buffer (mmap measured slower)
        return hashlib.file_digest(stream, "sha256").hexdigest()


class Mediator:
    """Mediates files of one layout into a sink.

    ``chunk_size`` records are committed per transaction; ``progress`` is called with
    the bytes read so far after every block.
    """

    def __init__(
        self,
        layout: Layout,
        sink: MediationSink,
        seen: SeenCdrIds,
        *,
        chunk_size: int = 20_000,
        block_size: int = 1 << 17,   # 128 KiB: the columns of a block stay in the CPU caches (measured fastest)
        progress: Progress | None = None,
        batch: bool = True,
        namespace: str = "",
        only_tenant: str | None = None,
        source: Source | None = None,
        subscribers: SubscriberTenants | None = None,
    ) -> None:
        """``namespace`` (the submitting tenant) goes into every CDR identity; with ``only_tenant``,
        records of any other tenant are rejected (see :func:`engine.mediation.mapper.compile_layout`).
        ``source``: where the files come from (their zone and numbering, see engine.mediation.sources);
        a layout that needs one refuses files without it.  ``subscribers``: the subscriber store's part in
        telling each CDR's tenant (engine.mediation.tenants)."""
        self.subscribers = subscribers
        self.namespace = namespace
        self.only_tenant = only_tenant
        self.source = source
        self.layout = layout.bind(source)
        self.sink = sink
        self.seen = seen
        self.chunk_size = max(1, chunk_size)
        self.block_size = block_size
        self.progress = progress
        self.batch = batch    # False: record-at-a-time only (the reference path, for differential tests)

    def mediate_path(self, path: Path | str, file_name: str | None = None) -> ReconciliationSummary:
        path = Path(path)
        content = file_id_of(path)
        with open(path, "rb") as stream:
            return self.mediate_stream(stream, content, file_name or path.name)

    def mediate_bytes(self, data: bytes, file_name: str = "<bytes>") -> ReconciliationSummary:
        return self.mediate_stream(io.BytesIO(data), hashlib.sha256(data).hexdigest(), file_name)

    def file_id(self, content_sha256: str) -> str:
        """The identity of this mediation of a file with that content (layout and version, source)."""
        source = self.layout.bound_source
        return mediation_id(content_sha256, self.layout.name, self.layout.version,
                            source.name if source else "", source.version if source else "")

    def mediate_stream(self, stream: BinaryIO, content_sha256: str, file_name: str) -> ReconciliationSummary:
        """Mediate (or resume) one file whose content has that SHA-256; ``stream`` must be seekable to resume."""
        file_id = self.file_id(content_sha256)
        checkpoint = self.sink.checkpoint(file_id)
        if checkpoint is not None and checkpoint.done:
            summary = checkpoint.summary.copy()
            summary.already_ingested = True
            return summary
        if checkpoint is not None and checkpoint.byte_offset:
            stream.seek(checkpoint.byte_offset)
        run = _Run(self, stream, file_id, file_name, checkpoint, content_sha256)
        return run.execute()


def _lines_of(row: list[str]) -> int:
    """Physical lines a parsed record took: 1 plus the line breaks inside its (quoted) fields."""
    return 1 + sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in row if "\n" in f or "\r" in f)


class _Run:
    """One pass over one file (fresh or resumed)."""

    def __init__(self, mediator: Mediator, stream: BinaryIO, file_id: str, file_name: str, checkpoint: Checkpoint | None,
                 content_sha256: str = "") -> None:
        layout = mediator.layout
        self.m = mediator
        self.layout = layout
        self.file_id = file_id
        self.resumed = checkpoint
        self.summary = checkpoint.summary.copy() if checkpoint else self._fresh_summary(file_name, content_sha256)
        self.record_no = checkpoint.record_no if checkpoint else 0
        self.header: tuple[str, ...] | None = checkpoint.header if checkpoint else None
        read = layout.read
        self.blocks = BlockReader(
            stream,
            read.encoding,
            block_size=mediator.block_size,
            max_record_bytes=read.max_record_bytes,
            max_field_bytes=read.max_field_bytes,
            start_offset=checkpoint.byte_offset if checkpoint else 0,
            start_line=checkpoint.line if checkpoint else 0,
        )
        self.reader: Any = None            # csv.reader over the lines of the block being read the slow way
        self.base = 0                      # line number before that block's first line
        self.first_pending = checkpoint is None   # the file's first record gets the layout checks
        self.splitter: BlockSplitter | None = None   # for the file's width (that of its first record)
        self.width = 0
        self.last_line = self.blocks.next_line - 1
        self.cdrs: list[CdrRow] = []
        self.rejects: list[RejectedRecord] = []
        self.compiled: CompiledLayout | None = None
        self.partials: PartialAssembler | None = None
        self.pairer: LegPairer | None = None

    def _fresh_summary(self, file_name: str, content_sha256: str) -> ReconciliationSummary:
        layout = self.layout
        source = layout.bound_source
        return ReconciliationSummary(self.file_id, file_name, layout.name, layout.version, source.name if source else "", content_sha256)

    # ------------------------------------------------------------------ top level

    def execute(self) -> ReconciliationSummary:
        progress = self.m.progress
        done_before = self.resumed.byte_offset if self.resumed else 0
        problem = self.layout.source_problem()
        if problem is not None:   # before reading a byte: the file is refused, nothing else stored
            return self._refuse(FileLevelError(problem[0], problem[1]))
        try:
            # rows of many small acyclic objects (see engine.gcpause; measured ~10 % of the run); each commit
            # collects the young generation, so whatever cyclic garbage there is stays bounded by a chunk
            with collector_paused():
                for block in self.blocks.blocks():
                    cancellation.checkpoint()   # a caller gone away stops the file here; what was committed resumes on the next upload
                    if self.splitter is None or not self._fast_block(block):
                        self._csv_block(block)
                    self.blocks.keep_from = self.last_line + 1   # older blocks may leave the window
                    if progress is not None:
                        progress(self.blocks.bytes_read + done_before)
                if self.compiled is None:   # an empty file: no header, no records
                    self._csv_block(None)
        except FileLevelError as exc:
            return self._refuse(exc)
        self._finish()
        return self.summary

    def _open(self) -> None:
        """The first block: header rows, then the layout compiled against them."""
        header_line = self._read_header()
        self.compiled = compile_layout(self.layout, self.header, header_line, namespace=self.m.namespace, only_tenant=self.m.only_tenant,
                                       subscribers=self.m.subscribers)
        if self.layout.partials is not None:
            self.partials = PartialAssembler(self.compiled.identity)
        legs = self.layout.legs
        if legs is not None and legs.pairs is not None:
            self.pairer = LegPairer(legs.pairs.within)
        self._replay_pending()
        if self.resumed is not None:   # the file's shape was settled by its first record
            self._set_width(self.resumed.width or self.compiled.expected_columns)

    def _set_width(self, width: int) -> None:
        """The file's width (its first record's): the fast paths take records of exactly this width."""
        assert self.compiled is not None
        self.width = width
        map_batch = self.compiled.map_batch
        if map_batch is not None and self.m.batch and self.layout.read.format == "csv":
            self.splitter = BlockSplitter.for_layout(self.layout, width, map_batch.used)

    def _csv_block(self, block: Block | None) -> None:
        """A block the slow way: csv.reader over its lines, every record checked."""
        lines = self.blocks.text_lines(block) if block is not None else []
        self.reader = self._reader(lines)
        self.base = block.first_line - 1 if block is not None else self.blocks.next_line - 1
        if self.compiled is None:
            try:
                self._open()
            except FileLevelError as exc:
                if exc.code != "read.missing-header" or block is None or self.blocks.eof:
                    raise
                self.header = None
                self.blocks.give_back(block.first_line)   # the header runs on into the next block
                return
        self._records(block)

    def _reader(self, lines: Any) -> Any:
        """csv.reader over text lines, or the key=value reader (the same interface)."""
        read = self.layout.read
        if read.format == "key_value":
            return KeyValueReader(lines, self.layout.all_columns, read.pair_separator, read.key_separator, read.record_marker)
        return csv.reader(iter(lines), delimiter=read.delimiter, quotechar=read.quotechar,
                          doublequote=True, skipinitialspace=read.skip_initial_space, strict=True)

    def _fast_block(self, block: Block) -> bool:
        """A block of plain lines: split in C, mapped column by column; False leaves it to the slow way."""
        assert self.splitter is not None and self.compiled is not None and self.compiled.map_batch is not None
        if self.first_pending or block.oversize:
            return False
        columns = self.splitter.split(block.data)
        if columns is None:
            return False
        result = self.compiled.map_batch.map_columns(columns)
        if result is None:
            return False
        out, dropped = result
        self.cdrs.extend(out)
        self.summary.add_dropped(dropped)
        before = self.record_no
        self.record_no += block.count
        self.last_line = block.last_line
        chunk = self.m.chunk_size
        if self.record_no // chunk != before // chunk:
            self._flush(self.last_line, self.record_no)
        return True

    def _read_header(self) -> int:
        read = self.layout.read
        if self.resumed is not None or read.header_rows == 0:
            return 0
        header_line = 0
        for i in range(1, read.header_rows + 1):
            start = self.reader.line_num
            try:
                row = next(self.reader)
            except StopIteration:
                raise FileLevelError("read.missing-header", f"the file ends before its {read.header_rows} header row(s)", start + 1) from None
            except Exception as exc:  # csv.Error
                raise FileLevelError("read.bad-header", f"header row {i} cannot be read: {exc}", start + 1) from None
            if i == read.header_row:
                self.header = tuple(row)
                header_line = start + 1
        self.summary.header_rows = read.header_rows
        return header_line

    def _refuse(self, exc: FileLevelError) -> ReconciliationSummary:
        """A file-level error: nothing of the file is stored, only its summary saying why."""
        offset = exc.byte_offset or (self._offset_of_line(exc.line) if exc.line else 0)
        fresh = self._fresh_summary(self.summary.file_name, self.summary.content_sha256)
        fresh.file_error = FileProblem(exc.code, exc.message, exc.line, offset)
        fresh.bytes_in = self.blocks.offset
        fresh.complete = True
        self.summary = fresh
        checkpoint = Checkpoint(self.file_id, 0, 0, 0, fresh.copy(), None, (), True)
        self.m.sink.commit(MediationChunk(self.file_id, [], [], checkpoint, file_problems=[fresh.file_error]))
        return fresh

    def _offset_of_line(self, line: int) -> int:
        try:
            return self.blocks.offset_after(line - 1)
        except ValueError:
            return 0

    # ------------------------------------------------------------------ the hot loop

    def _records(self, block: Block | None) -> None:
        """Every record of a block read the slow way: the file's first (and each one of a partial
        layout) through :meth:`_one`, the rest through the batch loop.  CSV syntax errors end one
        record and the loop goes on with the next line; a quoted field still open at the end of the
        block goes back to start the next one."""
        reader = self.reader
        base = self.base
        while True:
            try:
                if self.first_pending:
                    for row in reader:
                        if row:
                            self._one(row, base + reader.line_num, first_record=True)
                            self.first_pending = False
                            break
                        self.summary.blank_lines += 1
                        self.last_line = base + reader.line_num
                if self.first_pending:
                    break
                if self.compiled is not None and (self.partials is not None or self.pairer is not None):
                    for row in reader:
                        if row:
                            self._one(row, base + reader.line_num)
                        else:
                            self.summary.blank_lines += 1
                            self.last_line = base + reader.line_num
                else:
                    self._fast_loop(base)
                break
            except csv.Error as exc:
                line = base + reader.line_num
                if block is not None and not self.blocks.eof and line == block.last_line and str(exc) == "unexpected end of data":
                    self.blocks.give_back(self.last_line + 1)   # the record goes on in the next block
                    break
                if self.first_pending and self.layout.read.format == "csv":  # quoted values in another delimiter trip the CSV syntax first
                    raw, _, _ = self.blocks.raw(self.last_line + 1, line, self.layout.read.max_record_bytes)
                    self._check_delimiter(raw.decode(self.layout.read.encoding, "replace"), self.last_line + 1)
                self.first_pending = False  # otherwise a broken first record is a record problem, not proof of a wrong layout
                self.record_no += 1
                code = "record.field-too-large" if "field limit" in str(exc) else "record.malformed"
                self._reject(self.record_no, self.last_line + 1, line, code, "record", f"CSV syntax: {exc}")
                self.last_line = line
                self._maybe_flush(line)

    def _fast_loop(self, base: int) -> None:
        """The hot path: batches of records mapped column by column; any batch with something unusual
        (a flagged line, a blank line, a wrong width, a value that does not convert) goes record by record."""
        assert self.compiled is not None
        map_batch = self.compiled.map_batch
        if map_batch is None or not self.m.batch:
            self._row_loop(base)
            return
        alert = self.blocks.alert
        reader = self.reader
        cdrs = self.cdrs
        summary = self.summary
        chunk = self.m.chunk_size
        next_flush = self.record_no - self.record_no % chunk + chunk
        batch: list[list[str]] = []
        blocks = self.blocks
        while True:
            batch.clear()
            # the lines of the whole batch stay readable (rejects need their bytes); big records make smaller batches
            blocks.keep_from = self.last_line + 1
            average = blocks.offset // max(1, blocks.next_line - 1) if blocks.next_line > 1 else 256
            size = max(16, min(chunk, _BATCH, _BATCH_BYTES // max(1, average)))
            try:
                batch.extend(islice(reader, size))
            except csv.Error:
                self._rows_one_by_one(batch)   # the rows before the broken one, then the error goes up
                raise
            if not batch:
                return
            result = None
            ncols = self.width or -1   # no well-shaped record yet: record by record, which settles it
            if not alert[0] and len(batch[0]) == ncols and len(set(map(len, batch))) == 1:
                result = map_batch(batch)
            if result is None:
                # something unusual inside: small pieces keep the fast path for the clean ones
                for start in range(0, len(batch), _PIECE):
                    self._piece(batch[start : start + _PIECE], map_batch, ncols)
                next_flush = self.record_no - self.record_no % chunk + chunk
                continue
            out, dropped = result
            cdrs.extend(out)
            if dropped:
                summary.add_dropped(dropped)
            self.record_no += len(batch)
            self.last_line = base + reader.line_num
            if self.record_no >= next_flush:
                self._flush(self.last_line, self.record_no)
                next_flush = self.record_no - self.record_no % chunk + chunk

    def _piece(self, piece: list[list[str]], map_batch: Callable[[list[list[str]]], Any], ncols: int) -> None:
        """A slice of a batch that did not map as a whole: column by column if it is clean, else record by record."""
        if self.blocks.alert[0] or any(len(row) != ncols for row in piece):
            self._rows_one_by_one(piece)
            return
        result = map_batch(piece)
        if result is None:
            self._rows_one_by_one(piece)
            return
        out, dropped = result
        self.cdrs.extend(out)
        self.summary.add_dropped(dropped)
        before = self.record_no
        self.record_no += len(piece)
        self.last_line += sum(_lines_of(row) for row in piece)
        chunk = self.m.chunk_size
        if self.record_no // chunk != before // chunk:
            self._flush(self.last_line, self.record_no)

    def _rows_one_by_one(self, batch: list[list[str]]) -> None:
        """Map a batch record by record; each record's lines follow from the line breaks inside its fields."""
        line = self.last_line
        for row in batch:
            line += _lines_of(row)
            if row:
                self._one(row, line)
            else:
                self.summary.blank_lines += 1
                self.last_line = line

    def _row_loop(self, base: int) -> None:
        """The record-at-a-time loop: the reference the batch path is tested against."""
        assert self.compiled is not None
        map_row = self.compiled.map_row
        ncols = self.width or -1   # no well-shaped record yet: record by record (_one), which settles it
        alert = self.blocks.alert
        reader = self.reader
        cdrs = self.cdrs
        summary = self.summary
        filtered = summary.filtered
        chunk = self.m.chunk_size
        record_no = self.record_no
        pad = [""] * (self.compiled.expected_columns - ncols) if 0 < ncols < self.compiled.expected_columns else None
        next_flush = record_no - record_no % chunk + chunk   # flushes happen at multiples of the chunk size
        last = self.last_line - base   # in reader.line_num terms
        try:
            for row in reader:
                if alert[0] or len(row) != ncols:
                    self.record_no, self.last_line = record_no, base + last
                    if row:
                        self._one(row, base + reader.line_num)
                    else:
                        self.summary.blank_lines += 1
                        self.last_line = base + reader.line_num
                    record_no, last = self.record_no, self.last_line - base
                    next_flush = record_no - record_no % chunk + chunk
                    if ncols < 0 and self.width:
                        ncols = self.width
                        pad = [""] * (self.compiled.expected_columns - ncols) if ncols < self.compiled.expected_columns else None
                    continue
                record_no += 1
                try:
                    result = map_row(row + pad if pad else row)
                except FieldError as exc:
                    self._reject(record_no, base + last + 1, base + reader.line_num, exc.code, exc.field, exc.message)
                else:
                    if type(result) is tuple:
                        cdrs.append(result)
                    elif result == NON_BILLABLE_LEG:
                        summary.non_billable_legs += 1
                    else:
                        filtered[result] = filtered.get(result, 0) + 1
                last = reader.line_num
                if record_no >= next_flush:
                    self.record_no = record_no
                    next_flush = self._flush(base + last, record_no)
        finally:
            self.record_no, self.last_line = record_no, base + last

    def _one(self, row: list[str], line: int, first_record: bool = False) -> None:
        """One non-blank record, every check spelled out (first record, flagged lines, partial layouts)."""
        compiled = self.compiled
        assert compiled is not None
        self.record_no += 1
        first = self.last_line + 1
        if first_record and not compiled.accepts(len(row)):
            self._wrong_shape(row, first)
        if not self.width and compiled.accepts(len(row)):   # the file's first well-shaped record (the first may be broken)
            self._set_width(len(row))
        if not self._irregular(row, self.record_no, first, line):
            if len(row) < compiled.expected_columns:   # an optional trailing column the file leaves out
                row = row + [""] * (compiled.expected_columns - len(row))
            try:
                result = compiled.map_row(row)
            except FieldError as exc:
                self._reject(self.record_no, first, line, exc.code, exc.field, exc.message)
            else:
                if type(result) is not tuple:
                    self.summary.add_dropped({result: 1})
                elif self.partials is not None:
                    self._partial(row, result, self.record_no, first, line)
                elif self.pairer is not None:
                    self._leg(row, result, self.record_no, first, line)
                else:
                    self.cdrs.append(result)
        self.last_line = line
        self._maybe_flush(line)

    def _maybe_flush(self, line: int) -> None:
        if self.record_no % self.m.chunk_size == 0:
            self._flush(line, self.record_no)

    # ------------------------------------------------------------------ the slow paths

    def _check_delimiter(self, text: str, line: int) -> None:
        """Raise ``read.wrong-delimiter`` when the first record splits better on another delimiter."""
        ncols = len(self.layout.columns) if self.compiled else 0
        own = self.layout.read.delimiter
        for other in _OTHER_DELIMITERS:
            if other != own and text.count(other) >= max(1, ncols // 2) > text.count(own):
                raise FileLevelError(
                    "read.wrong-delimiter",
                    f"the first record looks {other!r}-delimited but layout {self.layout.name!r} expects {own!r}",
                    line,
                )

    def _shapes(self) -> str:
        assert self.compiled is not None
        return self.layout.shapes() if self.header is None or not self.layout.read.header_row else str(self.compiled.expected_columns)

    def _wrong_shape(self, row: list[str], line: int) -> None:
        """The first record has none of the layout's column counts: most likely the wrong layout or delimiter."""
        if len(row) == 1 and self.layout.read.format == "csv":
            self._check_delimiter(row[0], line)
        raise FileLevelError(
            "read.column-count",
            f"the first record has {len(row)} columns, layout {self.layout.name!r} expects {self._shapes()}: is this the right --format?",
            line,
        )

    def _irregular(self, row: list[str], record_no: int, first: int, last: int) -> bool:
        """Checks for flagged lines and column counts; True when the record was rejected here."""
        assert self.compiled is not None
        problem = self.blocks.inspect(first, last)
        if problem is not None:
            code, message, _ = problem
            self._reject(record_no, first, last, code, "record", message)
            return True
        if not self.compiled.accepts(len(row)):
            self._reject(record_no, first, last, "record.column-count", "record", f"{len(row)} columns, the layout expects {self._shapes()}")
            return True
        if self.blocks.tainted(first, last) and self._undecodable(row, record_no, first, last):
            return True
        limit = self.layout.read.max_field_bytes
        for i, value in enumerate(row):
            if len(value) > limit:
                self._reject(record_no, first, last, "record.field-too-large", f"column {i + 1}", f"column {i + 1} holds {len(value)} characters, over the {limit} limit")
                return True
        return False

    def _undecodable(self, row: list[str], record_no: int, first: int, last: int) -> bool:
        """Bytes not valid in the file's encoding reject the record only in a column the layout reads
        (a Latin-1 caller name in a column nobody maps is left alone); a column with its own declared
        encoding is read in that one by the mapper.  True when the record was rejected here."""
        assert self.compiled is not None and self.compiled.index is not None
        encodings = self.layout.column_encodings
        for ref, i in self.compiled.index.items():
            if i >= len(row) or ref in encodings:
                continue
            m = ESCAPED.search(row[i])
            if m is None:
                continue
            bad = ord(m.group()) - 0xDC00
            raw, offset, _ = self.blocks.raw(first, last, self.layout.read.max_record_bytes)
            read = self.layout.read
            head = row[i][: m.start()].encode(read.encoding, "surrogateescape")
            at = raw.find(row[i].encode(read.encoding, "surrogateescape"))
            where = offset + (at if at >= 0 else 0) + (len(head) if at >= 0 else 0)
            name = ref if isinstance(ref, str) else f"column {ref}"
            self._reject(record_no, first, last, "record.encoding", name,
                         f"column {name}: byte 0x{bad:02x} at offset {where} is not valid {read.encoding}")
            return True
        return False

    def _reject(self, record_no: int, first: int, last: int, code: str, field: str, message: str) -> None:
        raw, offset, truncated = self.blocks.raw(first, last, self.layout.read.max_record_bytes)
        self.rejects.append(RejectedRecord(self.file_id, record_no, first, offset, code, field, message, raw, truncated))
        rejected = self.summary.rejected
        rejected[code] = rejected.get(code, 0) + 1

    def _partial(self, row: list[str], result: CdrRow, record_no: int, first: int, last: int) -> None:
        assert self.compiled is not None and self.compiled.partial_info is not None and self.partials is not None
        try:
            info = self.compiled.partial_info(row)
        except FieldError as exc:
            self._reject(record_no, first, last, exc.code, exc.field, exc.message)
            return
        if info is None:
            self._finished_cdr(result)
            return
        raw, offset, _ = self.blocks.raw(first, last, self.layout.read.max_record_bytes)
        self._add_partial(info, result, PendingRecord(record_no, first, last, offset, raw))

    def _add_partial(self, info: PartialInfo, result: CdrRow, record: PendingRecord) -> None:
        assert self.partials is not None
        outcome, merged, parts = self.partials.add(info, result, record)
        if outcome == "duplicate":
            self.summary.duplicates += 1
        elif outcome == "merged" and merged is not None:
            self.summary.aggregated += parts - 1
            self._finished_cdr(merged)

    def _leg(self, row: list[str], result: CdrRow, record_no: int, first: int, last: int) -> None:
        assert self.compiled is not None and self.compiled.leg_info is not None and self.pairer is not None
        leg, other = self.compiled.leg_info(row)
        raw, offset, _ = self.blocks.raw(first, last, self.layout.read.max_record_bytes)
        self._leg_outcomes(self.pairer.add(leg, other, result, PendingRecord(record_no, first, last, offset, raw)))

    def _leg_outcomes(self, outcomes: list[LegOutcome]) -> None:
        for o in outcomes:
            if o.kind == "cdr":
                self._finished_cdr(o.row)
            elif o.kind == "leg":
                self.summary.non_billable_legs += 1
            else:
                self._reject_pending(o.record, NO_BILLABLE_LEG, o.reason)

    def _reject_pending(self, rec: PendingRecord, code: str, reason: str) -> None:
        self.rejects.append(RejectedRecord(self.file_id, rec.record_no, rec.line, rec.byte_offset, code, "record", reason, rec.raw))
        self.summary.rejected[code] = self.summary.rejected.get(code, 0) + 1

    def _finished_cdr(self, row: CdrRow) -> None:
        assert self.compiled is not None
        dropped = self.compiled.check_fields(row)
        if dropped is None:
            self.cdrs.append(row)
        else:
            self.summary.add_dropped({dropped: 1})

    def _replay_pending(self) -> None:
        """After a resume: the records the checkpoint holds back (open partials, legs waiting for
        their other leg) go through the mapper again."""
        assert self.compiled is not None
        if self.resumed is None:
            return
        read = self.layout.read
        for rec in self.resumed.pending:
            text = rec.raw.decode(read.encoding if read.encoding != "utf-8-sig" else "utf-8", "surrogateescape")
            row = next(self._reader(io.StringIO(text, newline="")))
            if len(row) < self.compiled.expected_columns:
                row = row + [""] * (self.compiled.expected_columns - len(row))
            result = self.compiled.map_row(row)
            if type(result) is not tuple:
                continue
            if self.partials is not None and self.compiled.partial_info is not None:
                info = self.compiled.partial_info(row)
                if info is not None:
                    self._add_partial(info, result, rec)
            elif self.pairer is not None and self.compiled.leg_info is not None:
                leg, other = self.compiled.leg_info(row)
                self._leg_outcomes(self.pairer.add(leg, other, result, rec))

    # ------------------------------------------------------------------ commits

    def _flush(self, line: int, record_no: int, done: bool = False) -> int:
        """Deduplicate and commit what was read up to ``line``; returns the record number of the next flush."""
        summary = self.summary
        rows = self.cdrs
        kept: list[CdrRow] = []
        duplicates: list[str] = []
        if rows:
            ids = [r[0] for r in rows]
            known = self.m.seen.seen(ids)
            if not known and len(set(ids)) == len(ids):
                kept = list(rows)  # the common case: nothing seen before, no repeats in the chunk
            else:
                in_chunk: set[str] = set()
                for row in rows:
                    cdr_id = row[0]
                    if cdr_id in known or cdr_id in in_chunk:
                        duplicates.append(cdr_id)
                    else:
                        in_chunk.add(cdr_id)
                        kept.append(row)
        summary.normalised += len(kept)
        summary.duplicates += len(duplicates)
        summary.records_in = record_no
        summary.bytes_in = self.blocks.offset_after(line) if line else self.blocks.offset
        summary.complete = done
        pending = self.partials.pending() if self.partials is not None else self.pairer.pending() if self.pairer is not None else ()
        summary_copy = summary.copy()
        checkpoint = Checkpoint(self.file_id, summary.bytes_in, line, record_no, summary_copy, self.header, pending, done, self.width)
        self.m.sink.commit(MediationChunk(self.file_id, kept, self.rejects, checkpoint, duplicates))
        self.cdrs.clear()
        self.rejects = []
        # the collector is paused during the run (execute): one young collection per chunk, once the chunk's
        # rows are gone (a collection that still saw them would walk every row of the chunk for nothing)
        del kept, duplicates, summary_copy, checkpoint
        gc.collect(0)
        return record_no + self.m.chunk_size

    def _finish(self) -> None:
        if self.pairer is not None:
            self._leg_outcomes(self.pairer.drain())
        if self.partials is not None:
            for rec in self.partials.drain():
                reason = "the call's other partial records never arrived in this file"
                self.rejects.append(RejectedRecord(self.file_id, rec.record_no, rec.line, rec.byte_offset, "partial.incomplete", "record", reason, rec.raw))
                self.summary.rejected["partial.incomplete"] = self.summary.rejected.get("partial.incomplete", 0) + 1
        self._flush(self.last_line, self.record_no, done=True)
        self.summary.check()
