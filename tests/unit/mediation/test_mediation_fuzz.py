"""Fuzzing the CSV front: random bytes and random quoting never crash and always reconcile.

Inputs that once failed are kept as files in ``tests/fuzz_regressions/mediation/``
(``<layout>__<name>.bin``) and replayed by :func:`test_regressions`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.mediation import Mediator, MemoryMediationStore, ReconciliationSummary

from .conftest import layout

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz_regressions" / "mediation"
LAYOUTS = {name: layout(name) for name in ("asterisk", "msc_generic", "cisco_cucm")}

_pieces = st.sampled_from(
    ['"', '""', ",", ";", "\n", "\r\n", "\r", "\t", " ", "ANSWERED", "2026-11-27 10:00:05", "20261127080000",
     "07700900123", "+44", "0", "60", "\x00", "é", "\ufeff", "MOC", "Y", "C1", "1"]
)
_field = st.one_of(st.text(max_size=12), st.lists(_pieces, max_size=6).map("".join))


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """Records of about the right width, odd quoting, stray line breaks and undecodable bytes."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        n = draw(st.sampled_from([1, 15, 17, 18, 19]))
        fields = [draw(_field) for _ in range(n)]
        quoted = [f'"{f}"' if draw(st.booleans()) else f for f in fields]
        lines.append(draw(st.sampled_from([",", ";"])).join(quoted) + draw(st.sampled_from(["\n", "\r\n", "", "\r"])))
    data = "".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


FIXTURES = Path(__file__).resolve().parent / "fixtures"
_BASES = {"asterisk": "asterisk_sample.csv", "msc_generic": "msc_sample.csv", "cisco_cucm": "cucm_sample.csv"}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A good sample file with a few random edits: most records stay valid, so every path is hit."""
    name = draw(st.sampled_from(sorted(_BASES)))
    data = (FIXTURES / _BASES[name]).read_bytes() * draw(st.integers(1, 3))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.one_of(st.sampled_from([b'"', b",", b";", b"\n", b"\r", b"\xff", b"\xc3", b'""', b"\x00"]), st.binary(max_size=6)))
        if edit == "insert":
            data = data[:at] + chunk + data[at:]
        elif edit == "delete":
            data = data[:at] + data[at + len(chunk) :]
        else:
            data = data[:at] + chunk + data[at + len(chunk) :]
    return name, data


def _check(name: str, data: bytes, chunk: int, block: int) -> ReconciliationSummary:
    store = MemoryMediationStore()
    summary = Mediator(LAYOUTS[name], store, store, chunk_size=chunk, block_size=block).mediate_bytes(data)
    summary.check()
    assert summary.complete
    if summary.file_error is None:
        assert summary.normalised == len(store.cdrs)
        assert summary.rejected_total == len(store.rejects)
        for rej in store.rejects:
            if not rej.raw_truncated:
                assert data[rej.byte_offset : rej.byte_offset + len(rej.raw)] == rej.raw, rej
    else:
        assert store.cdrs == {} and store.rejects == []
    return summary


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_bytes(), name=st.sampled_from(sorted(LAYOUTS)), chunk=st.integers(1, 5), block=st.sampled_from([1024, 4096]))
def test_structured_noise_always_reconciles(data: bytes, name: str, chunk: int, block: int) -> None:
    _check(name, data, chunk, block)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), chunk=st.integers(1, 4), block=st.sampled_from([1024, 4096]))
def test_mutated_good_files_always_reconcile(case: tuple[str, bytes], chunk: int, block: int) -> None:
    _check(case[0], case[1], chunk, block)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3000), name=st.sampled_from(sorted(LAYOUTS)))
def test_random_bytes_always_reconcile(data: bytes, name: str) -> None:
    _check(name, data, 3, 1024)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.bin")), ids=lambda p: p.name)
def test_regressions(path: Path) -> None:
    name = path.name.split("__", 1)[0]
    for chunk, block in ((1, 1024), (3, 4096), (20_000, 1 << 20)):
        _check(name, path.read_bytes(), chunk, block)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), chunk=st.integers(1, 3), crash_after=st.integers(0, 6))
def test_crash_anywhere_then_rerun_equals_a_clean_run(case: tuple[str, bytes], chunk: int, crash_after: int) -> None:
    from engine.mediation.memory import SimulatedCrash

    name, data = case
    clean = MemoryMediationStore()
    expected = Mediator(LAYOUTS[name], clean, clean, chunk_size=chunk, block_size=1024).mediate_bytes(data)
    store = MemoryMediationStore(fail_after_commits=crash_after)
    try:
        Mediator(LAYOUTS[name], store, store, chunk_size=chunk, block_size=1024).mediate_bytes(data)
    except SimulatedCrash:
        pass
    store.fail_after_commits = None
    got = Mediator(LAYOUTS[name], store, store, chunk_size=chunk, block_size=1024).mediate_bytes(data)
    got.already_ingested = False
    assert got.as_dict() == expected.as_dict()
    assert store.cdrs == clean.cdrs
    assert sorted(store.rejects, key=lambda r: r.record_no) == sorted(clean.rejects, key=lambda r: r.record_no)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), chunk=st.sampled_from([1, 2, 3, 7, 100, 300]), copies=st.sampled_from([1, 25]))
def test_batch_path_equals_record_path(case: tuple[str, bytes], chunk: int, copies: int) -> None:
    """The column-at-a-time fast path (whole batches and 64-record pieces) and the record-at-a-time
    reference give identical results."""
    name, data = case
    if copies > 1:   # many clean records around the damaged ones: batches split into pieces
        data = data * copies
    results = []
    for batch in (True, False):
        store = MemoryMediationStore()
        summary = Mediator(LAYOUTS[name], store, store, chunk_size=chunk, block_size=1024, batch=batch).mediate_bytes(data)
        results.append((summary.as_dict(), store.cdrs, sorted(store.rejects, key=lambda r: r.record_no)))
    assert results[0] == results[1]


@st.composite
def _quoted_breaks(draw: st.DrawFn) -> tuple[str, bytes]:
    """Asterisk files whose lastdata fields hold quoted line breaks and doubled quotes, some records broken."""
    out = []
    for i in range(draw(st.integers(1, 40))):
        data = draw(st.sampled_from(["x", "a\nb", 'say ""hi""', "\r\n\n", "p" * 300 + "\n" + "q" * 300, ""]))
        row = (f'"a","07700900123","07700900555","c","clid","S/a","S/b","Dial","{data}","2026-11-27 10:00:00",'
               f'"2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","u{i}",""\n')
        if draw(st.integers(0, 9)) == 0:
            row = row.replace(f'"{data}"', f'"{data}', 1)   # a quote that never closes
        out.append(row)
    return "asterisk", "".join(out).encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(mutated(), _quoted_breaks()), chunk=st.sampled_from([1, 3, 50]), block=st.sampled_from([1024, 2048]))
def test_the_result_does_not_depend_on_the_block_size(case: tuple[str, bytes], chunk: int, block: int) -> None:
    """Records cut by a block boundary (a quoted field running on, given back to start the next block) end
    exactly as when the whole file is one block."""
    name, data = case
    results = []
    for size in (block, 1 << 30):
        store = MemoryMediationStore()
        summary = Mediator(LAYOUTS[name], store, store, chunk_size=chunk, block_size=size).mediate_bytes(data)
        results.append((summary.as_dict(), store.cdrs, sorted(store.rejects, key=lambda r: r.record_no)))
    for summary in (results[0][0], results[1][0]):
        summary.pop("file_id")
        if summary["file_error"] is not None:
            summary.pop("bytes_in")   # of a refused file: how far the reader had got, a block or more
    assert results[0] == results[1]


def test_a_quoted_header_field_running_past_a_block_is_read_from_a_longer_block() -> None:
    """A header whose quoted field runs past the first block is not 'unexpected end of data': the block is given
    back and read longer, so the file gets the error the whole file gives (found by the test above)."""
    body = b"".join(b"R%d;MOC;234990100000001;447700900001;447700900777;20261127080000;1000;0;0;;C%d;;;normalRelease;\n" % (i, i)
                    for i in range(30))
    data = b'"record_id;record_type\n' + body + b'"R99;MOC\n'
    errors = []
    for size in (1024, 1 << 30):
        store = MemoryMediationStore()
        summary = Mediator(LAYOUTS["msc_generic"], store, store, chunk_size=1, block_size=size).mediate_bytes(data)
        assert summary.file_error is not None and store.cdrs == {}
        errors.append((summary.file_error.code, summary.file_error.message))
    assert errors[0] == errors[1]
    assert errors[0][0] == "read.bad-header" and "end of data" not in errors[0][1]
