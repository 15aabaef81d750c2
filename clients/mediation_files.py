"""File-based sink for offline mediation (``rulebill mediate`` without ``--remote``), implementing both of the
mediation engine's ports (the engine does no I/O: this is the command line's own adapter).

Writes the normalised CDR file (``*.cdr.csv``, the :mod:`engine.cdr` format), the
rejects as JSON lines and a checkpoint file beside the output.  A commit appends
and flushes the rows, then atomically replaces the checkpoint, which records how
long each output file was; a rerun after a crash truncates the outputs back to
those lengths and resumes, so the files equal one clean run's.

A refused file still writes its rejects file: one JSON line per reason the whole
file was refused (``"level": "file"``), so a pipeline never has to read stderr.

Duplicate ids are checked exactly in bounded memory: the ids written so far are
kept on disk next to the checkpoint (:class:`clients.mediation_ids.IdIndex`), and
removed when the file is finished.

The checkpoint never outlives its outputs: when a finished run's outputs were deleted
since, or are no longer the size it wrote, the file is mediated again and the outputs
rewritten (a run never says it wrote what is not there); when they are there, the run
reports them as already mediated.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO, Any, Sequence

from engine.cdr import COLUMNS
from clients.mediation_ids import IdIndex
from engine.mediation.ports import Checkpoint, MediationChunk, checkpoint_from_json, checkpoint_to_json


class OfflineSink:
    def __init__(self, out_path: Path | str, rejects_path: Path | str, index_block_bits: int | None = None) -> None:
        self.out_path = Path(out_path)
        self.rejects_path = Path(rejects_path)
        self.state_path = self.out_path.with_name(self.out_path.name + ".checkpoint.json")
        self.index = IdIndex(self.out_path.with_name(self.out_path.name + ".ids"), *(() if index_block_bits is None else (index_block_bits,)))
        self._out: IO[str] | None = None
        self._rejects: IO[str] | None = None
        self._writer: Any = None
        self._state: dict[str, Any] | None = None
        self.rewritten = False     # a finished run's outputs were missing or changed: this run writes them again
        if self.state_path.is_file():
            self._state = json.loads(self.state_path.read_text(encoding="utf-8"))
            if not self._outputs_intact():
                self.rewritten = bool(self._state and self._state["checkpoint"]["done"])
                self._state = None

    def _outputs_intact(self) -> bool:
        """The outputs are the ones the checkpoint describes (present, and as long as it says)."""
        state = self._state
        if state is None:
            return False
        try:
            return (self.out_path.stat().st_size >= state["out_bytes"] and self.rejects_path.stat().st_size >= state["rejects_bytes"]
                    and (not state["checkpoint"]["done"] or (self.out_path.stat().st_size == state["out_bytes"]
                                                             and self.rejects_path.stat().st_size == state["rejects_bytes"])))
        except OSError:
            return False

    # SeenCdrIds
    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        return self.index.check_and_add(cdr_ids)

    # MediationSink
    def checkpoint(self, file_id: str) -> Checkpoint | None:
        """The run's checkpoint (None: a fresh run); also readies the outputs and the duplicate index."""
        state = self._state
        if state is None or state.get("file_id") != file_id:
            self._state = None
            self.index.reset()
            return None
        if not state["checkpoint"]["done"]:
            # back to what the checkpoint says was written: a crash may have left more
            for path, size in ((self.out_path, state["out_bytes"]), (self.rejects_path, state["rejects_bytes"])):
                with open(path, "r+b") as f:
                    f.truncate(size)
            if not self.index.restore(state.get("index_sizes") or [0] * 256):
                self._rebuild_index()
        return checkpoint_from_json(state["checkpoint"])

    def _rebuild_index(self) -> None:
        """The index from the output itself: the ids it holds are the ones written."""
        self.index.reset()
        with open(self.out_path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            next(rows, None)
            batch: list[str] = []
            for row in rows:
                batch.append(row[0])
                if len(batch) >= 20_000:
                    self.index.check_and_add(batch)
                    self.index.add(batch)
                    batch = []
            self.index.check_and_add(batch)
            self.index.add(batch)

    def commit(self, chunk: MediationChunk) -> None:
        self._open(chunk.file_id)
        assert self._out is not None and self._rejects is not None
        self._writer.writerows(chunk.cdrs)   # csv writes None as empty and numbers as text: the file form of a row
        for rej in chunk.rejects:
            self._rejects.write(json.dumps(rej.as_json(), sort_keys=True) + "\n")
        for problem in chunk.file_problems:
            self._rejects.write(json.dumps(problem.as_json(chunk.file_id), sort_keys=True) + "\n")
        self._out.flush()
        self._rejects.flush()
        os.fsync(self._out.fileno())
        os.fsync(self._rejects.fileno())
        self.index.add(row[0] for row in chunk.cdrs)
        state = {
            "file_id": chunk.file_id,
            "out_bytes": self._out.tell(),
            "rejects_bytes": self._rejects.tell(),
            "index_sizes": self.index.sizes,
            "checkpoint": checkpoint_to_json(chunk.checkpoint),
        }
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_path)
        self._state = state
        if chunk.checkpoint.done:
            self.close()
            self.index.remove()

    def close(self) -> None:
        for stream in (self._out, self._rejects):
            if stream is not None:
                stream.close()
        self._out = self._rejects = None
        self.index.close()

    def _open(self, file_id: str) -> None:
        if self._out is not None:
            return
        resuming = self._state is not None and self._state.get("file_id") == file_id and not self._state["checkpoint"]["done"]
        if resuming:   # the outputs were cut back to the checkpoint by checkpoint()
            self._out = open(self.out_path, "a", newline="", encoding="utf-8")
            self._rejects = open(self.rejects_path, "a", encoding="utf-8")
            self._writer = csv.writer(self._out, lineterminator="\n")
            return
        self._out = open(self.out_path, "w", newline="", encoding="utf-8")
        self._rejects = open(self.rejects_path, "w", encoding="utf-8")
        self._writer = csv.writer(self._out, lineterminator="\n")
        self._writer.writerow(COLUMNS)
