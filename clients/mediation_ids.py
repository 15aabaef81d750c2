"""An exact set of CDR ids on disk, with a filter of fixed size in memory: duplicates found in bounded memory.

Offline mediation must know every CDR id it has written (a duplicate is exact, never
"probably"), yet a 5 GB file holds tens of millions of them.  So the ids live on disk,
next to the checkpoint, in 256 append-only bucket files (16 bytes per id, bucket by the
id's first byte), and memory holds only a blocked Bloom filter of fixed size (32 MiB by
default, whatever the file size): a 64-bit block per id, four bits set in it.

``check_and_add(ids)`` asks the filter; an id it has never seen is new for sure (the
usual case, answered in C-level list operations).  The few it may have seen are checked
exactly in their bucket files, each file read once per call.  At 10 million ids about one
id in a thousand needs that check; the filter's false positives grow with the count (the
memory does not), so a far larger file reads more of the index per chunk, never more RAM.

CDR ids are hex SHA-256 prefixes (engine.cdr.cdr_identity): uniformly spread, so their own
digits are the filter's hash values and bucket numbers.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from bisect import bisect_left
from collections import defaultdict, deque
from itertools import repeat
from operator import and_, eq, itemgetter, or_, rshift
from pathlib import Path
from typing import Iterable, Sequence

BLOCK_BITS = 22                      # 2**22 blocks of 64 bits: 32 MiB
_MASK_BITS = 12
_FIRST_16 = itemgetter(slice(16))
_ID_BYTES = 16


def _masks() -> array:
    """4096 masks of four distinct bits of 64, fixed (derived from SHA-256, not from a random seed)."""
    out = array("Q")
    for n in range(1 << _MASK_BITS):
        digest = hashlib.sha256(n.to_bytes(2, "big")).digest()
        bits: list[int] = []
        for byte in digest:
            bit = byte & 63
            if bit not in bits:
                bits.append(bit)
            if len(bits) == 4:
                break
        out.append(sum(1 << b for b in bits))
    return out


_MASKS = _masks()


class IdIndex:
    def __init__(self, directory: Path | str, block_bits: int = BLOCK_BITS) -> None:
        self.directory = Path(directory)
        self.block_shift = 64 - block_bits
        self.blocks = array("Q", bytes(8 << block_bits))
        self.sizes = [0] * 256              # bytes in each bucket file, as committed
        self._fds: dict[int, int] = {}      # bucket -> open descriptor (appends and exact checks)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, bucket: int) -> int:
        fd = self._fds.get(bucket)
        if fd is None:
            fd = self._fds[bucket] = os.open(self._path(bucket), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        return fd

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """An empty index (a fresh run): bucket files emptied, filter cleared."""
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob("*.ids"):
            path.unlink()
        self.sizes = [0] * 256
        self.blocks = array("Q", bytes(len(self.blocks) * 8))

    def restore(self, sizes: Sequence[int]) -> bool:
        """Back to a checkpoint: bucket files cut to the committed sizes, the filter rebuilt from them.
        False when a bucket holds less than the checkpoint says (the machine went down before the
        bytes reached the disk): the caller rebuilds the index from its output."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sizes = list(sizes)
        self.blocks = array("Q", bytes(len(self.blocks) * 8))
        for bucket, size in enumerate(self.sizes):
            path = self._path(bucket)
            if not size:
                path.unlink(missing_ok=True)
                continue
            if not path.exists() or path.stat().st_size < size:
                return False
            with open(path, "r+b") as f:
                f.truncate(size)
                data = f.read()
            self._test_and_set([data[i:i + _ID_BYTES].hex() for i in range(0, len(data), _ID_BYTES)])
        return True

    def remove(self) -> None:
        """The run is finished: the index is no longer needed."""
        self.close()
        if self.directory.is_dir():
            for path in self.directory.glob("*.ids"):
                path.unlink()
            try:
                self.directory.rmdir()
            except OSError:
                pass

    # ------------------------------------------------------------------ the two operations

    def check_and_add(self, ids: Sequence[str]) -> set[str]:
        """The ids already stored (exactly); every id is added to the filter (the store is the truth:
        an id the filter holds but no bucket does is simply checked and found new)."""
        if not ids:
            return set()
        maybe = self._test_and_set(ids)
        if not any(maybe):
            return set()
        candidates = [i for i, hit in zip(ids, maybe) if hit]
        return self._exact(candidates)

    def add(self, ids: Iterable[str]) -> None:
        """Append committed ids to their buckets.  Not fsynced: the caller's output holds the same ids
        (and is fsynced), so a bucket cut short by a machine crash is rebuilt from it (:meth:`restore`)."""
        ordered = sorted(ids)                     # hex order is byte order: each bucket is one run
        if not ordered:
            return
        raw = bytes.fromhex("".join(ordered))
        start = 0
        while start < len(ordered):
            bucket = int(ordered[start][:2], 16)
            end = bisect_left(ordered, f"{bucket + 1:02x}", start) if bucket < 255 else len(ordered)
            data = raw[start * _ID_BYTES:end * _ID_BYTES]
            os.write(self._fd(bucket), data)
            self.sizes[bucket] += len(data)
            start = end

    # ------------------------------------------------------------------ inside

    def _test_and_set(self, ids: Sequence[str]) -> list[bool]:
        """Per id: were all its bits already set?  Then sets them.  C-level list operations only."""
        xs = list(map(int, map(_FIRST_16, ids), repeat(16)))
        where = list(map(rshift, xs, repeat(self.block_shift)))
        masks = list(map(_MASKS.__getitem__, map(and_, xs, repeat((1 << _MASK_BITS) - 1))))
        blocks = self.blocks
        hits = list(map(eq, map(and_, map(blocks.__getitem__, where), masks), masks))
        # one at a time, in order: two ids of one block both keep their bits
        deque(map(blocks.__setitem__, where, map(or_, map(blocks.__getitem__, where), masks)), maxlen=0)
        return hits

    def _exact(self, candidates: list[str]) -> set[str]:
        by_bucket: dict[int, list[str]] = defaultdict(list)
        for cdr_id in candidates:
            by_bucket[int(cdr_id[:2], 16)].append(cdr_id)
        found: set[str] = set()
        for bucket, wanted in by_bucket.items():
            size = self.sizes[bucket]
            if not size:
                continue
            data = os.pread(self._fd(bucket), size, 0)
            if len(wanted) > 64:   # many: one set of the bucket beats many searches
                stored = {data[i:i + _ID_BYTES] for i in range(0, len(data), _ID_BYTES)}
                found.update(w for w in wanted if bytes.fromhex(w) in stored)
                continue
            for cdr_id in wanted:
                if _holds(data, bytes.fromhex(cdr_id)):
                    found.add(cdr_id)
        return found

    def _path(self, bucket: int) -> Path:
        return self.directory / f"{bucket:02x}.ids"


def _holds(data: bytes, raw: bytes) -> bool:
    """Whether ``raw`` is one of the 16-byte records of ``data`` (not just 16 bytes straddling two)."""
    at = data.find(raw)
    while at >= 0:
        if at % _ID_BYTES == 0:
            return True
        at = data.find(raw, at + 1)
    return False
