"""Pipeline guarantees: every record in exactly one place, bad input as clear errors, crash safety."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from clients.mediation_files import OfflineSink
from engine.cdr import read_cdrs
from engine.mediation import (
    Mediator,
    MemoryMediationStore,
    ReconciliationError,
    ReconciliationSummary,
    load_layout,
    row_to_cdr,
)
from engine.mediation.memory import SimulatedCrash

from .conftest import FIXTURES, layout, mediate, source

ROW = (
    '"acct1","07700900123","07700900555","ctx","clid","SIP/a","SIP/b","Dial","{data}",'
    '"2026-11-27 10:00:00","2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","{uid}",""\n'
)


def rows(n: int, start: int = 0, data: str = "x") -> str:
    return "".join(ROW.format(uid=f"u{i}", data=data) for i in range(start, start + n))


def test_counts_always_add_up() -> None:
    summary, store = mediate("asterisk", (FIXTURES / "asterisk_sample.csv").read_bytes())
    assert summary.records_in == summary.normalised + summary.filtered_total + summary.rejected_total + summary.duplicates + summary.aggregated
    assert summary.complete and summary.file_error is None
    assert len(store.cdrs) == summary.normalised and len(store.rejects) == summary.rejected_total
    assert store.summaries[summary.file_id].as_dict() == summary.as_dict()


def test_check_refuses_a_summary_that_does_not_add_up() -> None:
    with pytest.raises(ReconciliationError):
        ReconciliationSummary("f", records_in=3, normalised=1).check()


def test_non_utf8_bytes_in_a_mapped_column_reject_the_record_with_the_byte_offset() -> None:
    good = rows(1).encode()
    bad = rows(1, 1).encode().replace(b'"07700900123"', b'"0770090012\xe9"')
    data = good + bad + rows(1, 2).encode()
    summary, store = mediate("asterisk", data)
    assert (summary.normalised, summary.rejected) == (2, {"record.encoding": 1})
    rej = store.rejects[0]
    assert (rej.record_no, rej.line, rej.byte_offset, rej.field) == (2, 2, len(good), "src")
    assert rej.raw == bad
    bad_at = len(good) + bad.index(b"\xe9")
    assert f"offset {bad_at}" in rej.reason


def test_non_utf8_bytes_in_a_column_nobody_maps_do_not_reject_a_billable_call() -> None:
    latin1 = rows(1, 1).encode().replace(b'"clid"', b'"Jos\xe9 P\xe9rez <07700900123>"')
    data = rows(1).encode() + latin1 + rows(1, 2).encode()
    summary, store = mediate("asterisk", data)
    assert (summary.records_in, summary.normalised, summary.rejected) == (3, 3, {})


def test_quoted_newlines_and_quotes_across_small_blocks() -> None:
    tricky = 'line one\nline "two"\r\nline, three' * 20
    text = rows(3) + rows(1, 3, data=tricky.replace('"', '""')) + rows(3, 4)
    summary, store = mediate("asterisk", text.encode(), block_size=1024)
    assert (summary.records_in, summary.normalised, summary.rejected_total) == (7, 7, 0)
    summary, store = mediate("asterisk", (rows(1, 0) + 'x,"unterminated\n' + rows(1, 1)).encode(), block_size=1024)
    assert summary.records_in == summary.accounted


def test_unterminated_quote_at_end_of_file_is_rejected_not_truncated() -> None:
    data = (rows(1) + rows(1, 1)[:-4] + '"\n').encode()   # last field opens a quote that never closes
    summary, store = mediate("asterisk", data)
    assert (summary.normalised, summary.rejected) == (1, {"record.malformed": 1})
    assert store.rejects[0].raw == data[len(rows(1)) :] and store.rejects[0].line == 2


def test_huge_field_and_huge_line_are_bounded_rejects() -> None:
    lay = load_layout_text_for_limits()
    big_field = rows(1, 1, data="y" * 5000)
    huge_line = "z" * 40_000 + "\n"
    data = (rows(1) + big_field + huge_line + rows(1, 2)).encode()
    summary, store = mediate(lay, data, block_size=1024)
    assert summary.records_in == 4 and summary.normalised == 2
    assert summary.rejected == {"record.field-too-large": 1, "record.too-large": 1}
    too_large = next(r for r in store.rejects if r.code == "record.too-large")
    assert too_large.raw_truncated and len(too_large.raw) <= 16384 and too_large.line == 3
    assert too_large.byte_offset == len((rows(1) + big_field).encode())
    assert store.rejects[0].field == "column 9"   # lastdata, a column nobody maps: still bounded


def load_layout_text_for_limits():  # type: ignore[no-untyped-def]
    from engine.mediation import load_layout_text

    from .conftest import RULES

    text = (RULES / "asterisk.yaml").read_text(encoding="utf-8").replace(
        'encoding: utf-8', "encoding: utf-8\n  max_field_bytes: 4096\n  max_record_bytes: 16384"
    )
    return load_layout_text(text, "asterisk").bind(source("asterisk"))


def test_wrong_delimiter_is_a_file_level_error_and_nothing_is_stored() -> None:
    for data in (rows(3).replace(",", ";").encode(), rows(3).replace(",", "\t").replace('"', "").encode()):
        summary, store = mediate("asterisk", data)
        assert summary.file_error is not None
        assert (summary.file_error.code, summary.file_error.line) == ("read.wrong-delimiter", 1)
        assert store.cdrs == {} and store.rejects == [] and summary.records_in == 0
        assert store.summaries[summary.file_id].file_error == summary.file_error


def test_other_layout_is_refused_with_column_count() -> None:
    data = (FIXTURES / "freeswitch_sample.csv").read_bytes()
    summary, store = mediate("asterisk", data)
    assert summary.file_error is not None and summary.file_error.code == "read.column-count"
    assert store.cdrs == {}


def test_header_mismatch_and_missing_columns_name_the_line() -> None:
    msc = (FIXTURES / "msc_sample.csv").read_bytes()
    summary, _ = mediate("msc_generic", msc.replace(b"served_imsi", b"imsi", 1))
    assert summary.file_error is not None
    assert (summary.file_error.code, summary.file_error.line) == ("read.header-mismatch", 1)
    assert "column 3" in summary.file_error.message
    cucm = (FIXTURES / "cucm_sample.csv").read_bytes()
    summary, _ = mediate("cisco_cucm", cucm.replace(b'"pkid"', b'"pk"', 1))
    assert summary.file_error is not None and summary.file_error.code == "read.missing-columns"
    assert "pkid" in summary.file_error.message
    summary, _ = mediate("cisco_cucm", b"")
    assert summary.file_error is not None and summary.file_error.code == "read.missing-header"


def test_empty_file_and_blank_lines() -> None:
    summary, _ = mediate("asterisk", b"")
    assert (summary.records_in, summary.file_error) == (0, None)
    summary, _ = mediate("asterisk", ("\n" + rows(1) + "\n\n" + rows(1, 1)).encode())
    assert (summary.records_in, summary.normalised, summary.blank_lines) == (2, 2, 3)


def test_crlf_bom_and_lone_cr_line_endings() -> None:
    crlf = rows(3).replace("\n", "\r\n").encode()
    assert mediate("asterisk", crlf)[0].normalised == 3
    assert mediate("asterisk", rows(3).replace("\n", "\r").encode())[0].normalised == 3
    bom_layout = load_layout_text_with("encoding: utf-8", "encoding: utf-8-sig")
    summary, store = mediate(bom_layout, b"\xef\xbb\xbf" + rows(2).encode())
    assert summary.normalised == 2


def load_layout_text_with(old: str, new: str):  # type: ignore[no-untyped-def]
    from engine.mediation import load_layout_text

    from .conftest import RULES

    return load_layout_text((RULES / "asterisk.yaml").read_text(encoding="utf-8").replace(old, new), "asterisk").bind(source("asterisk"))


def test_duplicates_within_and_across_files_and_the_same_file_twice() -> None:
    store = MemoryMediationStore()
    first, _ = mediate("asterisk", (rows(3) + rows(1)).encode(), store)       # u0 twice
    assert (first.normalised, first.duplicates) == (3, 1)
    second, _ = mediate("asterisk", rows(4, 2).encode(), store)               # u2 seen in file 1
    assert (second.normalised, second.duplicates) == (3, 1)
    before = (dict(store.cdrs), list(store.rejects), store.commits)
    again, _ = mediate("asterisk", (rows(3) + rows(1)).encode(), store)
    assert again.already_ingested and again.normalised == first.normalised
    assert (dict(store.cdrs), list(store.rejects), store.commits) == before


def test_duplicates_across_chunks_of_one_file() -> None:
    summary, store = mediate("asterisk", (rows(10) + rows(10)).encode(), chunk_size=3)
    assert (summary.normalised, summary.duplicates) == (10, 10)


def _clean(name: str, data: bytes, chunk: int) -> MemoryMediationStore:
    store = MemoryMediationStore()
    Mediator(layout(name), store, store, chunk_size=chunk).mediate_bytes(data)
    return store


@pytest.mark.parametrize("name,fixture", [("asterisk", "asterisk_sample.csv"), ("msc_generic", "msc_sample.csv")])
@pytest.mark.parametrize("crash_after", [0, 1, 2, 3, 4])
def test_crash_and_rerun_equals_one_clean_run(name: str, fixture: str, crash_after: int) -> None:
    data = (FIXTURES / fixture).read_bytes()
    clean = _clean(name, data, chunk=2)
    store = MemoryMediationStore(fail_after_commits=crash_after)
    with pytest.raises(SimulatedCrash):
        Mediator(layout(name), store, store, chunk_size=2).mediate_bytes(data)
    store.fail_after_commits = None
    summary = Mediator(layout(name), store, store, chunk_size=2).mediate_bytes(data)
    assert store.cdrs == clean.cdrs
    assert sorted(store.rejects, key=lambda r: r.record_no) == sorted(clean.rejects, key=lambda r: r.record_no)
    assert summary.as_dict() == next(iter(clean.summaries.values())).as_dict()


def test_a_new_layout_needs_only_a_yaml_file(tmp_path: Path) -> None:
    """A switch Rulebill has never seen: tab-separated, a header, epoch milliseconds,
    the service told by the number dialled.  No code changes."""
    (tmp_path / "tenants.yaml").write_text("default_tenant: mno\nranges:\n  - {tenant: mvno-alpha, msisdn_prefix: '3361'}\n", encoding="utf-8")
    (tmp_path / "acme_pbx.yaml").write_text(
        textwrap.dedent(
            """\
            description: ACME PBX 9000 export
            source: acme
            read: {delimiter: "\\t", header_rows: 1, header_row: 1}
            columns: [CallId, Caller, Called, StartMs, Talk, Result]
            numbering: {country_code: "33", national_prefix: "0", short_codes: ["15", "17", "18", "112"]}
            identity: [CallId]
            fields:
              service:
                column: Called
                convert: classify
                cases:
                  - {matches: "^(15|17|18|112)$", value: voice}
                  - {matches: "^\\\\*", value: supplementary}
                default: voice
              start_time: {column: StartMs, convert: epoch, unit: ms}
              a_number: {column: Caller, convert: number}
              b_number: {column: Called, convert: number}
              duration_seconds: {column: Talk, convert: duration, unit: cs}
            filters:
              - {id: failed, column: Result, not_in: [OK]}
            """
        ),
        encoding="utf-8",
    )
    data = "CallId\tCaller\tCalled\tStartMs\tTalk\tResult\nA1\t0612345678\t112\t1764237600123\t1234\tOK\nA2\t0612345678\t0145678901\t1764237700000\t0\tBUSY\n"
    (tmp_path / "calls.tsv").write_text(data, encoding="utf-8")
    store = MemoryMediationStore()
    summary = Mediator(load_layout(tmp_path / "acme_pbx.yaml"), store, store).mediate_path(tmp_path / "calls.tsv")
    assert (summary.records_in, summary.normalised, summary.filtered) == (2, 1, {"failed": 1})
    cdr = row_to_cdr(next(iter(store.cdrs.values())))
    assert (cdr.source, cdr.origin_id, cdr.a_number, cdr.b_number) == ("acme", "A1", "33612345678", "112")
    assert (cdr.duration_seconds, cdr.tenant) == (13, "mvno-alpha")
    assert cdr.start_time.isoformat() == "2025-11-27T10:00:00+00:00"


def test_offline_sink_writes_the_normalised_format_and_resumes(tmp_path: Path) -> None:
    data = (FIXTURES / "msc_sample.csv").read_bytes()
    src = tmp_path / "msc.csv"
    src.write_bytes(data)
    out, rejects = tmp_path / "out.cdr.csv", tmp_path / "rejects.jsonl"

    class Crashing(OfflineSink):
        commits = 0

        def commit(self, chunk):  # type: ignore[no-untyped-def]
            if Crashing.commits == 2:
                raise SimulatedCrash("boom")
            Crashing.commits += 1
            super().commit(chunk)

    with pytest.raises(SimulatedCrash):
        sink = Crashing(out, rejects)
        Mediator(layout("msc_generic"), sink, sink, chunk_size=2).mediate_path(src)
    sink.close()
    sink2 = OfflineSink(out, rejects)
    resumed = Mediator(layout("msc_generic"), sink2, sink2, chunk_size=2).mediate_path(src)
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    sink3 = OfflineSink(clean_dir / "out.cdr.csv", clean_dir / "rejects.jsonl")
    clean = Mediator(layout("msc_generic"), sink3, sink3, chunk_size=2).mediate_path(src)
    assert resumed.as_dict() == clean.as_dict()
    assert out.read_bytes() == (clean_dir / "out.cdr.csv").read_bytes()
    assert rejects.read_bytes() == (clean_dir / "rejects.jsonl").read_bytes()
    parsed = list(read_cdrs(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(parsed) == clean.normalised and all(not hasattr(c, "reason") for c in parsed)
    sink4 = OfflineSink(out, rejects)
    assert Mediator(layout("msc_generic"), sink4, sink4).mediate_path(src).already_ingested


def test_rejects_keep_their_bytes_when_a_batch_spans_many_blocks() -> None:
    """Regression: the read window once dropped blocks a batch still needed, leaving rejects without bytes."""
    text = "".join(rows(1, i) if i % 50 else rows(1, i).replace('"2026-11-27 10:00:05"', '"2026-11-31 10:00:05"') for i in range(1, 600))
    for batch in (True, False):
        store = MemoryMediationStore()
        summary = Mediator(layout("asterisk"), store, store, chunk_size=500, block_size=1024, batch=batch).mediate_bytes(text.encode())
        assert summary.rejected == {"value.bad-timestamp": 11}
        data = text.encode()
        for rej in store.rejects:
            assert rej.raw and data[rej.byte_offset : rej.byte_offset + len(rej.raw)] == rej.raw


def test_progress_reports_bytes_read_up_to_the_file_size() -> None:
    data = rows(400).encode()
    seen: list[int] = []
    store = MemoryMediationStore()
    Mediator(layout("asterisk"), store, store, block_size=4096, progress=seen.append).mediate_bytes(data)
    assert seen == sorted(seen) and seen[-1] == len(data) and len(seen) > 5


def test_memory_stays_bounded_as_the_file_grows() -> None:
    """Peak memory depends on block, batch and chunk sizes, not on the file: 4x the rows, about the same peak."""
    import tracemalloc

    class Dropping(MemoryMediationStore):
        def commit(self, chunk):  # type: ignore[no-untyped-def]
            self.commits += 1     # keep nothing: measure the pipeline, not the store

    peaks = []
    for n in (4_000, 16_000):
        data = rows(n).encode()
        sink = Dropping()
        tracemalloc.start()
        mediator = Mediator(layout("asterisk"), sink, sink, chunk_size=500, block_size=65536)
        summary = mediator.mediate_stream(io.BytesIO(data), "f" * 64, "big")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert summary.normalised == n
        del data
    assert peaks[1] < peaks[0] * 1.3, peaks


def test_the_c_splitter_is_built() -> None:
    """``pip install`` builds it wherever there is a C compiler, as on this project's machines; a
    silent build failure would only show as slow mediation, so it fails here instead (set
    RULEBILL_ALLOW_NO_C_EXTENSION=1 on a machine that really has no compiler)."""
    import os

    from engine.mediation import csvblock

    if os.environ.get("RULEBILL_ALLOW_NO_C_EXTENSION") == "1":
        pytest.skip("RULEBILL_ALLOW_NO_C_EXTENSION=1")
    assert csvblock.available(), "engine/mediation/_csvblock.c was not built: run `make test` (pip install -e .)"


def _counting_splits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, per block offered to the C splitter, whether it was taken (the real splitter runs)."""
    from engine.mediation import csvblock

    if not csvblock.available():
        pytest.skip("the C extension is not built")
    taken: list[bool] = []
    real = csvblock.BlockSplitter.split

    def split(self, data):  # type: ignore[no-untyped-def]
        got = real(self, data)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(csvblock.BlockSplitter, "split", split)
    return taken


def test_plain_blocks_take_the_fast_path_with_the_reference_result(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = _counting_splits(monkeypatch)
    text = rows(300) + rows(1, 300).replace('"2026-11-27 10:00:05"', '"2026-11-31 10:00:05"') + rows(300, 301)
    results = []
    for batch in (True, False):
        store = MemoryMediationStore()
        summary = Mediator(layout("asterisk"), store, store, chunk_size=97, block_size=4096, batch=batch).mediate_bytes(text.encode())
        results.append((summary.as_dict(), store.cdrs, store.rejects))
    assert results[0] == results[1]
    assert results[0][0]["normalised"] == 600 and results[0][0]["rejected"] == {"value.bad-timestamp": 1}
    assert len(taken) >= 20 and all(taken)   # after the first block (the slow way: first-record checks), every block split


def test_a_quoted_field_across_a_block_boundary_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = _counting_splits(monkeypatch)
    long_field = "\n".join(["a long ""quoted"" line, of lastdata"] * 60)      # ~2.3 kB over 60 lines
    bad = rows(1, 9).replace('"2026-11-27 10:00:05"', '"2026-11-31 10:00:05"')
    text = rows(5) + rows(1, 5, data=long_field.replace('"', '""')) + rows(3, 6) + bad + rows(5, 10)
    data = text.encode()
    results = []
    for batch in (True, False):
        store = MemoryMediationStore()
        summary = Mediator(layout("asterisk"), store, store, block_size=1024, batch=batch).mediate_bytes(data)
        results.append((summary.as_dict(), store.cdrs, store.rejects))
    assert results[0] == results[1]
    summary, cdrs, rejects = results[0]
    assert (summary["records_in"], summary["normalised"], summary["rejected"]) == (15, 14, {"value.bad-timestamp": 1})
    (rej,) = rejects
    assert rej.line == 5 + 60 + 3 + 1 and data[rej.byte_offset : rej.byte_offset + len(rej.raw)] == rej.raw == bad.encode()
    assert True in taken


def test_header_rows_longer_than_a_block() -> None:
    lay = load_layout_text_with("encoding: utf-8", "encoding: utf-8\n  header_rows: 2")
    banner = ("# " + "x" * 800 + "\n") * 2
    summary, store = mediate(lay, (banner + rows(3)).encode(), block_size=1024)
    assert (summary.header_rows, summary.records_in, summary.normalised) == (2, 3, 3)
    summary, _ = mediate(lay, banner.splitlines(True)[0].encode(), block_size=1024)   # one of the two
    assert summary.file_error is not None and summary.file_error.code == "read.missing-header"


def test_identities_carry_the_submitting_tenant_only_when_given() -> None:
    from engine.cdr import cdr_identity

    data = rows(2).encode()
    plain, _ = mediate("asterisk", data)
    store = MemoryMediationStore()
    Mediator(layout("asterisk"), store, store, namespace="mvno-alpha").mediate_bytes(data)
    assert sorted(store.cdrs) == sorted(cdr_identity("london-pbx", f"u{i}", "mvno-alpha") for i in range(2))
    assert not set(store.cdrs) & {cdr_identity("london-pbx", f"u{i}") for i in range(2)}
