"""Records of ``key=value`` pairs, one per line, read into the columns a layout declares.

Kamailio's acc module logs a CDR per call as one line of pairs::

    ... log_write_cdr(): start_time=1796533796.571; end_time=1796533798.579; duration=2.008; caller=447700900123; callee=33612345678; callid=1-2@127.0.0.1

A layout with ``read: {format: key_value}`` lists the keys it knows as ``columns``; each
record becomes a row in that order (a key the record lacks is empty, a key the layout
does not know is ignored, as a switch adds extra ones).  ``record_marker`` says where on
a line the record starts (what a logger writes before it, a syslog or log prefix, is
skipped); a line without it is rejected.
A key given twice, or a pair without ``key_separator``, rejects the record.

The reader has the interface of ``csv.reader`` that the pipeline uses: iteration over
rows, ``line_num``, and ``csv.Error`` for a record that cannot be read.
"""

from __future__ import annotations

import csv
from typing import Iterable, Iterator


class KeyValueReader:
    def __init__(self, lines: Iterable[str], columns: tuple[str, ...], pair_separator: str = ";", key_separator: str = "=",
                 record_marker: str = "") -> None:
        self.lines = iter(lines)
        self.position = {name: i for i, name in enumerate(columns)}
        self.width = len(columns)
        self.pair_separator = pair_separator
        self.key_separator = key_separator
        self.marker = record_marker
        self.line_num = 0

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        line = next(self.lines)
        self.line_num += 1
        text = line.rstrip("\r\n")
        if not text.strip():
            return []   # a blank line, as csv.reader gives it
        if self.marker:
            at = text.find(self.marker)
            if at < 0:
                raise csv.Error(f"no {self.marker!r} on this line: not a record")
            text = text[at:]
        row = [""] * self.width
        seen: set[str] = set()
        for pair in text.split(self.pair_separator):
            pair = pair.strip()
            if not pair:
                continue
            key, sep, value = pair.partition(self.key_separator)
            key = key.strip()
            if not sep:
                raise csv.Error(f"{pair[:40]!r} is not a key{self.key_separator}value pair")
            if key in seen:
                raise csv.Error(f"key {key[:40]!r} appears twice")
            seen.add(key)
            i = self.position.get(key)
            if i is not None:
                row[i] = value.strip()
        return row
