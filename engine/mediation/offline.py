"""File-based sink for offline mediation (``rulebill mediate``), implementing both ports.

Writes the normalised CDR file (``*.cdr.csv``, the :mod:`engine.cdr` format), the
rejects as JSON lines and a checkpoint file beside the output.  A commit appends
and flushes the rows, then atomically replaces the checkpoint, which records how
long each output file was; a rerun after a crash truncates the outputs back to
those lengths and resumes, so the files equal one clean run's.

Duplicate ids are remembered in memory for this output (16 bytes each) and
reloaded from the output file on resume.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO, Any, Sequence

from engine.cdr import COLUMNS
from engine.mediation.ports import Checkpoint, MediationChunk, checkpoint_from_json, checkpoint_to_json
from engine.mediation.rows import row_text


class OfflineSink:
    def __init__(self, out_path: Path | str, rejects_path: Path | str) -> None:
        self.out_path = Path(out_path)
        self.rejects_path = Path(rejects_path)
        self.state_path = self.out_path.with_name(self.out_path.name + ".checkpoint.json")
        self._ids: set[bytes] = set()
        self._out: IO[str] | None = None
        self._rejects: IO[str] | None = None
        self._writer: Any = None
        self._state: dict[str, Any] | None = None
        if self.state_path.is_file():
            self._state = json.loads(self.state_path.read_text(encoding="utf-8"))

    # SeenCdrIds
    def seen(self, cdr_ids: Sequence[str]) -> set[str]:
        ids = self._ids
        return {i for i in cdr_ids if bytes.fromhex(i) in ids}

    # MediationSink
    def checkpoint(self, file_id: str) -> Checkpoint | None:
        if self._state is None or self._state.get("file_id") != file_id:
            return None
        return checkpoint_from_json(self._state["checkpoint"])

    def commit(self, chunk: MediationChunk) -> None:
        self._open(chunk.file_id)
        assert self._out is not None and self._rejects is not None
        write = self._writer.writerow
        for row in chunk.cdrs:
            write(row_text(row))
            self._ids.add(bytes.fromhex(row[0]))
        for rej in chunk.rejects:
            self._rejects.write(json.dumps(rej.as_json(), sort_keys=True) + "\n")
        self._out.flush()
        self._rejects.flush()
        os.fsync(self._out.fileno())
        os.fsync(self._rejects.fileno())
        state = {
            "file_id": chunk.file_id,
            "out_bytes": self._out.tell(),
            "rejects_bytes": self._rejects.tell(),
            "checkpoint": checkpoint_to_json(chunk.checkpoint),
        }
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_path)
        self._state = state
        if chunk.checkpoint.done:
            self.close()

    def close(self) -> None:
        for stream in (self._out, self._rejects):
            if stream is not None:
                stream.close()
        self._out = self._rejects = None

    def _open(self, file_id: str) -> None:
        if self._out is not None:
            return
        resuming = self._state is not None and self._state.get("file_id") == file_id and not self._state["checkpoint"]["done"]
        if resuming:
            assert self._state is not None
            for path, size in ((self.out_path, self._state["out_bytes"]), (self.rejects_path, self._state["rejects_bytes"])):
                with open(path, "r+b") as f:
                    f.truncate(size)
            with open(self.out_path, newline="", encoding="utf-8") as f:
                rows = csv.reader(f)
                next(rows, None)
                self._ids = {bytes.fromhex(r[0]) for r in rows if r}
            self._out = open(self.out_path, "a", newline="", encoding="utf-8")
            self._rejects = open(self.rejects_path, "a", encoding="utf-8")
            self._writer = csv.writer(self._out, lineterminator="\n")
            return
        self._out = open(self.out_path, "w", newline="", encoding="utf-8")
        self._rejects = open(self.rejects_path, "w", encoding="utf-8")
        self._writer = csv.writer(self._out, lineterminator="\n")
        self._writer.writerow(COLUMNS)
