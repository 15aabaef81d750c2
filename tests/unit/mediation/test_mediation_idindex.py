"""The offline duplicate check: exact, in memory that does not grow with the file (issue 15)."""

from __future__ import annotations

import hashlib
import json
from contextlib import closing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.mediation_files import OfflineSink
from clients.mediation_ids import IdIndex
from engine.mediation import Mediator

from .conftest import layout


def _id(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:32]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.integers(0, 400), max_size=60), max_size=12))
def test_the_index_answers_exactly_as_a_set_would(tmp_path: Path, batches: list[list[int]]) -> None:
    # closed after each example: an index holds a descriptor per bucket until closed (60 examples would leave up to
    # 960 open in this test process, past select()'s 1024 with the rest of a worker's modules)
    with closing(IdIndex(tmp_path / "ids", block_bits=4)) as index:   # 16 blocks: the filter says "maybe" nearly always
        index.reset()
        stored: set[str] = set()
        for batch in batches:
            ids = [_id(n) for n in batch]
            assert index.check_and_add(ids) == set(ids) & stored
            new = list(dict.fromkeys(i for i in ids if i not in stored))
            index.add(new)
            stored.update(new)


def test_restore_cuts_back_to_the_checkpoint_and_a_lost_bucket_is_reported(tmp_path: Path) -> None:
    with closing(IdIndex(tmp_path / "ids", block_bits=8)) as index, closing(IdIndex(tmp_path / "ids", block_bits=8)) as again, \
            closing(IdIndex(tmp_path / "ids", block_bits=8)) as after_the_crash:
        index.reset()
        index.add([_id(n) for n in range(100)])
        sizes = list(index.sizes)
        index.add([_id(n) for n in range(100, 200)])        # written after the checkpoint: a crash undoes them
        assert again.restore(sizes)
        assert again.check_and_add([_id(5), _id(150)]) == {_id(5)}
        victim = next(p for p in (tmp_path / "ids").glob("*.ids"))
        victim.write_bytes(b"")                              # the machine went down before it reached the disk
        assert not after_the_crash.restore(sizes)


def _rows(n: int, start: int = 0) -> bytes:
    row = ('"a","07700900123","07700900555","ctx","clid","SIP/a","SIP/b","Dial","x",'
           '"2026-11-27 10:00:00","2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","u{n}",""\n')
    return "".join(row.format(n=i) for i in range(start, start + n)).encode()


def test_offline_duplicates_far_apart_are_found_and_the_index_goes_when_done(tmp_path: Path) -> None:
    src = tmp_path / "Master.csv"
    src.write_bytes(_rows(300) + _rows(300))             # the whole file twice: 300 duplicates, chunks apart
    out = tmp_path / "Master.csv.cdr.csv"
    sink = OfflineSink(out, tmp_path / "r.jsonl")
    summary = Mediator(layout("asterisk"), sink, sink, chunk_size=50).mediate_path(src)
    assert (summary.normalised, summary.duplicates) == (300, 300)
    assert not (tmp_path / "Master.csv.cdr.csv.ids").exists()


def test_a_resumed_run_rebuilds_a_lost_index_from_its_output(tmp_path: Path) -> None:
    src = tmp_path / "Master.csv"
    src.write_bytes(_rows(200) + _rows(100))
    out, rejects = tmp_path / "o.cdr.csv", tmp_path / "r.jsonl"

    class Crash(Exception):
        pass

    class Crashing(OfflineSink):
        def commit(self, chunk):  # type: ignore[no-untyped-def]
            if chunk.checkpoint.record_no > 150:
                raise Crash()
            super().commit(chunk)

    first = Crashing(out, rejects)
    try:
        Mediator(layout("asterisk"), first, first, chunk_size=50).mediate_path(src)
    except Crash:
        pass
    first.close()
    for bucket in (tmp_path / "o.cdr.csv.ids").glob("*.ids"):
        bucket.write_bytes(b"")                           # the index did not survive; the output did
    state = json.loads((tmp_path / "o.cdr.csv.checkpoint.json").read_text())
    assert 0 < state["checkpoint"]["record_no"] <= 150 and not state["checkpoint"]["done"]
    sink = OfflineSink(out, rejects)
    summary = Mediator(layout("asterisk"), sink, sink, chunk_size=50).mediate_path(src)
    assert (summary.records_in, summary.normalised, summary.duplicates) == (300, 200, 100)
    assert out.read_text().count("\n") == 201
