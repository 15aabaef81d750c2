"""The Asterisk files of the shared conformance corpus (asterisk/testsuite), skipped when absent.

- Master.csv files mediate; Master2.csv repeats a call of Master.csv, so after it the
  store recognises it as a duplicate from another file.
- cdrlib_good.csv: 5 rows; 3 unanswered (FAILED, NO ANSWER, BUSY) are filtered and the
  second row repeats the first row's uniqueid, so it is a duplicate.
- cdrlib_buggy.csv: its one row opens a quote that never closes; it is rejected with
  its original bytes, never silently truncated into a "valid" 18-column row.
- CEL files are channel events, not CDRs: Rulebill ships no CEL layout (a CEL event is
  not a billable record; a call is assembled from several).  Mediating them with the
  Asterisk CDR layout is refused at file level with read.column-count on line 1 (20 columns:
  neither the 18 of cdr_csv nor the 21 of newcdrcolumns=yes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mediation import Mediator, MemoryMediationStore, row_to_cdr

from .conftest import layout


@pytest.fixture
def asterisk_dir(conformance: Path) -> Path:
    path = conformance / "cdr" / "asterisk"
    if not path.is_dir():
        pytest.skip(f"no Asterisk CDR files under {conformance}")
    return path


def _mediate(path: Path, store: MemoryMediationStore | None = None):  # type: ignore[no-untyped-def]
    store = store or MemoryMediationStore()   # the testsuite's machines wrote their times in UTC
    return Mediator(layout("asterisk", zone="UTC"), store, store).mediate_path(path), store


def test_master_files_mediate_and_repeat_is_a_duplicate(asterisk_dir: Path) -> None:
    summary, store = _mediate(asterisk_dir / "lib_python_asterisk_self_test_Master.csv")
    assert (summary.records_in, summary.normalised, summary.rejected_total) == (2, 2, 0)
    cdrs = sorted((row_to_cdr(r) for r in store.cdrs.values()), key=lambda c: c.start_time)
    assert [c.origin_id for c in cdrs] == ["1270167992.0", "1270168442.0"]
    assert [c.duration_seconds for c in cdrs] == [7, 7]
    assert cdrs[0].start_time.isoformat() == "2010-04-02T00:26:32+00:00"
    assert cdrs[0].b_number == "1" and cdrs[0].a_number == ""
    again, store = _mediate(asterisk_dir / "lib_python_asterisk_self_test_Master2.csv", store)
    assert (again.records_in, again.normalised, again.duplicates) == (1, 0, 1)


def test_cdrlib_good(asterisk_dir: Path) -> None:
    summary, store = _mediate(asterisk_dir / "asttest_self-tests_cdrlib_good.csv")
    assert (summary.records_in, summary.normalised, summary.duplicates) == (5, 1, 1)
    assert summary.filtered == {"unanswered": 3} and summary.rejected == {}
    (cdr,) = [row_to_cdr(r) for r in store.cdrs.values()]
    assert (cdr.a_number, cdr.b_number, cdr.duration_seconds) == ("test", "100", 5)   # a named SIP peer, an extension


def test_cdrlib_buggy_is_rejected_with_original_bytes(asterisk_dir: Path) -> None:
    path = asterisk_dir / "asttest_self-tests_cdrlib_buggy.csv"
    summary, store = _mediate(path)
    assert (summary.records_in, summary.normalised, summary.rejected) == (1, 0, {"record.malformed": 1})
    (rej,) = store.rejects
    assert (rej.record_no, rej.line, rej.byte_offset, rej.field) == (1, 1, 0, "record")
    assert rej.raw == path.read_bytes()


@pytest.mark.parametrize("name", ["lib_python_asterisk_self_test_CELMaster1.csv", "lib_python_asterisk_self_test_CELMaster2.csv"])
def test_cel_files_are_refused_as_the_wrong_layout(asterisk_dir: Path, name: str) -> None:
    summary, store = _mediate(asterisk_dir / name)
    assert summary.file_error is not None
    assert (summary.file_error.code, summary.file_error.line, summary.file_error.byte_offset) == ("read.column-count", 1, 0)
    assert "20 columns" in summary.file_error.message
    assert store.cdrs == {} and store.rejects == []
