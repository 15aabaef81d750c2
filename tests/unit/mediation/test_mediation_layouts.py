"""The shipped layouts: each validates and mediates its sample file to the expected CDRs."""

from __future__ import annotations

import pytest

from engine.cdr import COLUMNS, MediatedCdr, Service, cdr_identity
from engine.mediation import Mediator, MemoryMediationStore, layout_names, row_to_cdr, validate_directory

from .conftest import FIXTURES, RULES, layout


def _run(name: str, fixture: str):  # type: ignore[no-untyped-def]
    store = MemoryMediationStore()
    summary = Mediator(layout(name), store, store).mediate_path(FIXTURES / fixture)
    cdrs = {row[2]: row_to_cdr(row) for row in store.cdrs.values()}
    return summary, cdrs, store


def test_shipped_rules_validate_clean() -> None:
    assert validate_directory(RULES) == []
    assert set(layout_names(RULES)) >= {"asterisk", "freeswitch", "freeswitch_builtin", "cisco_cucm", "msc_generic"}


def test_asterisk_sample() -> None:
    summary, cdrs, store = _run("asterisk", "asterisk_sample.csv")
    assert (summary.records_in, summary.normalised, summary.duplicates) == (9, 3, 1)
    assert summary.filtered == {"unanswered": 1, "zero-billable": 1, "test-numbers": 1}
    assert summary.rejected == {"value.bad-timestamp": 1, "record.column-count": 1}
    first = cdrs["1764237600.1"]
    assert first == MediatedCdr(
        cdr_id=cdr_identity("london-pbx", "1764237600.1"),    # the file's source names the CDRs
        source="london-pbx",
        origin_id="1764237600.1",
        service=Service.VOICE,
        direction=first.direction,
        start_time=first.start_time,
        a_number="447700900123",
        b_number="447700900555",
        duration_seconds=60,
        tenant="mvno-alpha",
        attributes={"accountcode": "acct1"},
    )
    assert first.start_time.isoformat() == "2026-11-27T10:00:05+00:00"
    assert cdrs["1764237780.3"].a_number == "447700900600"      # "+44 7700 900600"
    assert cdrs["1764237780.3"].b_number == "999"               # short code kept
    assert cdrs["1764237780.3"].tenant == "mvno-beta"
    assert "1764237960.6" in cdrs                               # a quoted field spanning two lines
    bad_date, short_row = sorted(store.rejects, key=lambda r: r.record_no)
    assert (bad_date.record_no, bad_date.line, bad_date.code, bad_date.field) == (8, 9, "value.bad-timestamp", "start_time")
    assert (short_row.record_no, short_row.line, short_row.code) == (9, 10, "record.column-count")
    data = (FIXTURES / "asterisk_sample.csv").read_bytes()
    for rej in store.rejects:   # original bytes at their offset, exactly
        assert data[rej.byte_offset : rej.byte_offset + len(rej.raw)] == rej.raw


def test_msc_generic_sample_services_tenants_partials() -> None:
    summary, cdrs, store = _run("msc_generic", "msc_sample.csv")
    assert (summary.records_in, summary.normalised, summary.aggregated) == (11, 6, 2)
    assert summary.filtered == {"unsuccessful": 1}
    assert summary.rejected == {"partial.incomplete": 1, "value.unmapped": 1}
    assert cdrs["R1"].duration_seconds == 62                     # 61,500 ms rounds up
    assert cdrs["R1"].b_number == "447700900777"
    assert cdrs["R1"].tenant == "mvno-alpha"                     # by IMSI range
    assert cdrs["R2"].direction.value == "terminating" and cdrs["R2"].tenant == "mvno-beta"
    assert cdrs["R3"].service == Service.SMS
    assert (cdrs["R4"].service, cdrs["R4"].volume_up_bytes, cdrs["R4"].volume_down_bytes) == (Service.DATA, 1048576, 5242880)
    assert cdrs["R4"].b_number == "internet.mvno-beta"           # an APN, kept
    merged = cdrs["C5"]
    assert merged.duration_seconds == 3600 + 3600 + 1800 and merged.event_count == 1
    assert merged.start_time.isoformat() == "2026-11-27T08:04:00+00:00" and merged.tenant == "mno"
    assert merged.cdr_id == cdr_identity("msc", "C5")
    assert cdrs["R9"].service == Service.SUPPLEMENTARY and cdrs["R9"].supplementary_code == "*21#"
    incomplete = next(r for r in store.rejects if r.code == "partial.incomplete")
    assert incomplete.raw.startswith(b"R10;") and incomplete.line == 11
    unmapped = next(r for r in store.rejects if r.code == "value.unmapped")
    assert unmapped.field == "service"


def test_cucm_sample_two_header_rows_and_epoch() -> None:
    summary, cdrs, _ = _run("cisco_cucm", "cucm_sample.csv")
    assert (summary.records_in, summary.normalised, summary.header_rows) == (5, 3, 2)
    assert summary.filtered == {"not-end-record": 1, "unanswered": 1}
    first = cdrs["0b5f3a2e-1c4d-4e6f-8a9b-0c1d2e3f4a01"]
    assert first.start_time.isoformat() == "2025-11-27T08:00:05+00:00"
    assert (first.a_number, first.b_number, first.duration_seconds) == ("2001", "12125550123", 60)
    assert cdrs["0b5f3a2e-1c4d-4e6f-8a9b-0c1d2e3f4a03"].b_number == "442079460000"   # 011 international prefix
    assert cdrs["0b5f3a2e-1c4d-4e6f-8a9b-0c1d2e3f4a04"].b_number == "12125550199"    # NANP without the 1
    assert first.attributes == {"global_call_id": "1001", "orig_device": "SEP001122334455"}


def test_freeswitch_samples_local_time_and_dst() -> None:
    summary, cdrs, _ = _run("freeswitch", "freeswitch_sample.csv")
    assert (summary.records_in, summary.normalised, summary.filtered) == (3, 2, {"unanswered": 1})
    first = cdrs["a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d"]
    assert first.start_time.isoformat() == "2014-05-29T14:59:52+00:00"   # Madrid summer time
    assert first.b_number == "34688886392"
    repeated_hour = cdrs["e2fe712e-e752-11e3-8c03-65b6c3cdac7d"]
    assert repeated_hour.start_time.isoformat() == "2014-10-26T00:30:10+00:00"  # fold=0: first 02:30
    summary, cdrs, _ = _run("freeswitch_builtin", "freeswitch_builtin_sample.csv")
    assert summary.normalised == 1
    assert cdrs["a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d"].attributes == {"accountcode": "acct9"}  # after ', "'


@pytest.mark.parametrize("name", ["asterisk", "freeswitch", "cisco_cucm", "msc_generic"])
def test_every_output_row_is_a_valid_mediated_cdr(name: str) -> None:
    fixture = {"asterisk": "asterisk_sample.csv", "freeswitch": "freeswitch_sample.csv", "cisco_cucm": "cucm_sample.csv", "msc_generic": "msc_sample.csv"}[name]
    _, _, store = _run(name, fixture)
    for row in store.cdrs.values():
        assert len(row) == len(COLUMNS)
        cdr = row_to_cdr(row)
        assert cdr.cdr_id == cdr_identity(cdr.source, cdr.origin_id)
