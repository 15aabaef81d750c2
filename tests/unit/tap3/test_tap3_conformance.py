"""Acceptance: the TAP/RAP files of the shared conformance corpus (written outside Rulebill).

Folder: $RULEBILL_CONFORMANCE_DIR/tap3, default <repo>/../shared/conformance/tap3;
skipped when absent.  Each file's outcome is pinned, decided by decoding it and
checking its audit totals:

* the libxfsx ``tap_3_12_*`` samples are well-formed BER, but their audit block
  was never kept in step with their events (totalCharge 2300 against events
  summing to 71200, audit time stamps from 2005 against events from 2014, and
  the edited variants change events without touching the audit).  Clearing
  refuses them; the tests pin exactly which audit fields mismatch, and pin the
  decoded content so the BER handling (indefinite forms etc.) is still proven.
* ``tap_3_12_trailing_eoc_invalid`` has 2 junk bytes after the batch: refused by the decoder.
* ``rap_mini`` lacks its mandatory returnDetails: refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.tap3 import FATAL, RECORD, EventKind, Tap3DecodeError, decode_file, process_file, to_cdrs, validate

_DEFAULT = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
CORPUS = Path(os.environ.get("RULEBILL_CONFORMANCE_DIR", str(_DEFAULT))) / "tap3"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not found at {CORPUS}")


def load(name: str) -> bytes:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    return path.read_bytes()


def fatal_fields(name: str) -> list[tuple[str, str]]:
    return sorted((i.code, i.field) for i in validate(decode_file(load(name))) if i.severity == FATAL)


AUDIT = "TransferBatch.auditControlInfo."
TOTAL = ("audit-mismatch", AUDIT + "totalCharge")
COUNT = ("audit-mismatch", AUDIT + "callEventDetailsCount")
EARLIEST = ("audit-mismatch", AUDIT + "earliestCallTimeStamp")
LATEST = ("audit-mismatch", AUDIT + "latestCallTimeStamp")

# The four events of tap_3_12_valid: (kind, IMSI, UTC start, duration, total charge, incoming volume)
VALID_EVENTS = [
    (EventKind.MOBILE_TERMINATED_CALL, "133713371337133", "20140301140342", 153, 2300, None),
    (EventKind.MOBILE_ORIGINATED_CALL, "232323232323232", "20140301150200", 213, 2300, None),
    (EventKind.GPRS_CALL, "232323232323232", "20140301150800", 500, 66600, 1200000000),
    (EventKind.SUPPL_SERVICE_EVENT, "133713371337133", "20140302150800", None, 0, None),
]


def summary(name: str) -> list[tuple[object, ...]]:
    tb = decode_file(load(name)).transfer_batch
    assert tb is not None
    return [(e.kind, e.imsi, e.start.local if e.start else None, e.duration,
             sum(c.total_charge for c in e.all_charges()), e.volume_incoming) for e in tb.events]


@pytest.mark.parametrize("name", ["tap_3_12_valid.ber", "tap_3_12_valid_att.ber", "tap_3_12_valid_most_indef.ber",
                                  "tap_3_12_valid_some_cdr_indefinite.ber", "tap_3_12_valid_add_osi.ber"])
def test_valid_family_decodes_to_the_same_events_whatever_the_length_forms(name: str) -> None:
    assert summary(name) == VALID_EVENTS
    assert fatal_fields(name) == [EARLIEST, LATEST, TOTAL]


def test_valid_header_accounting_network_and_audit() -> None:
    doc = decode_file(load("tap_3_12_valid.ber"))
    tb = doc.transfer_batch
    assert tb is not None and tb.batch_control and tb.accounting and tb.network and tb.audit
    bc = tb.batch_control
    assert (bc.sender, bc.recipient, bc.file_sequence_number) == ("WERFD", "XLKJE", "31707")
    assert (bc.specification_version, bc.release_version) == (3, 12)
    assert bc.file_creation is not None and (bc.file_creation.local, bc.file_creation.utc_offset) == (
        "20050405090547", "+0200")
    acc = tb.accounting
    assert (acc.local_currency, acc.tap_currency, acc.tap_decimal_places) == ("EUR", "", 3)
    conv = acc.currency_conversions[0]
    assert (conv.exchange_rate_code, conv.decimal_places, conv.exchange_rate) == (1, 5, 116203)
    assert tb.network.utc_offsets == {1: "+0200"}
    assert [(r.code, r.type, r.id) for r in tb.network.rec_entities] == [(1, 1, "foo"), (22, 1, "bar"), (142, 4, "baz")]
    a = tb.audit
    assert (a.total_charge, a.total_tax_value, a.total_discount_value, a.call_event_details_count) == (2300, 0, 0, 4)


def test_valid_add_osi_carries_operator_specific_information() -> None:
    tb = decode_file(load("tap_3_12_valid_add_osi.ber")).transfer_batch
    assert tb is not None and tb.audit is not None
    assert tb.audit.operator_spec_information == ("Patched for xyz", "Patchdate: 2015-05-01")


def test_valid_converts_to_cdrs_when_asked_despite_the_audit() -> None:
    cdrs, rejects = to_cdrs(decode_file(load("tap_3_12_valid.ber")))
    assert rejects == []
    assert [(c.service.value, c.direction.value, c.start_time.isoformat(), c.charge_micros) for c in cdrs] == [
        ("voice", "terminating", "2014-03-01T12:03:42+00:00", 2_300_000),
        ("voice", "originating", "2014-03-01T13:02:00+00:00", 2_300_000),
        ("data", "originating", "2014-03-01T13:08:00+00:00", 66_600_000),
        ("supplementary", "originating", "2014-03-02T13:08:00+00:00", None),
    ]
    assert {c.visited_network for c in cdrs} == {"WERFD"} and {c.charge_currency for c in cdrs} == {"XDR"}
    assert [c.origin_id for c in cdrs] == ["31707:0", "31707:1", "31707:2", "31707:3"]


def test_valid_is_refused_by_clearing_naming_the_total_charge() -> None:
    outcome = process_file(load("tap_3_12_valid.ber"))
    assert not outcome.accepted and outcome.cdrs == []
    assert "totalCharge is 2300 but the call events" in outcome.reason


def test_valid_removed_misses_an_event_the_audit_still_counts() -> None:
    assert [e[0] for e in summary("tap_3_12_valid_removed.ber")] == [
        EventKind.MOBILE_TERMINATED_CALL, EventKind.GPRS_CALL, EventKind.SUPPL_SERVICE_EVENT]
    assert fatal_fields("tap_3_12_valid_removed.ber") == [COUNT, EARLIEST, LATEST, TOTAL]


def test_valid_replaced_moves_every_year_to_2016_but_keeps_the_mismatch() -> None:
    assert [e[2] for e in summary("tap_3_12_valid_replaced.ber")] == [
        "20160301140342", "20160301150200", "20160301150800", "20160302150800"]
    assert fatal_fields("tap_3_12_valid_replaced.ber") == [EARLIEST, LATEST, TOTAL]


def test_timestamps_uses_a_second_utc_offset_code() -> None:
    doc = decode_file(load("tap_3_12_timestamps.ber"))
    tb = doc.transfer_batch
    assert tb is not None and tb.network is not None and len(tb.network.utc_offsets) == 2
    cdrs, rejects = to_cdrs(doc)
    assert rejects == [] and len(cdrs) == 5
    assert cdrs[4].start_time.isoformat() == "2014-03-02T20:12:00+00:00"
    assert fatal_fields("tap_3_12_timestamps.ber") == [COUNT, EARLIEST, LATEST, TOTAL]


def test_negative_volume_is_a_record_level_reject() -> None:
    data = load("tap_3_12_negative_volume.ber")
    doc = decode_file(data)
    issues = validate(doc)
    assert [(i.record_index, i.code, i.field) for i in issues if i.severity == RECORD] == [
        (0, "negative-volume", "callEventDetails[0].dataVolumeIncoming")]
    cdrs, rejects = to_cdrs(doc)
    assert cdrs == [] and len(rejects) == 1
    assert (rejects[0].index, rejects[0].offset, rejects[0].code) == (0, 257, "negative-volume")
    assert rejects[0].raw == data[257:401] and "negative data volume -2" in rejects[0].reason


def test_negative_volume_fixed_decodes_the_large_positive_volume() -> None:
    doc = decode_file(load("tap_3_12_negative_volume_fixed.ber"))
    tb = doc.transfer_batch
    assert tb is not None and tb.events[0].volume_incoming == 4294967294
    issues = validate(doc)
    assert [i for i in issues if i.severity == RECORD] == []
    cdrs, rejects = to_cdrs(doc)
    assert rejects == [] and cdrs[0].volume_down_bytes == 4294967294
    # its audit still claims 4 events and a total charge of 2300 for the single GPRS call
    assert fatal_fields("tap_3_12_negative_volume_fixed.ber") == [COUNT, EARLIEST, LATEST, TOTAL]


def test_trailing_bytes_after_the_batch_are_refused_with_offset() -> None:
    with pytest.raises(Tap3DecodeError) as info:
        decode_file(load("tap_3_12_trailing_eoc_invalid.ber"))
    assert (info.value.code, info.value.offset) == ("trailing-bytes", 819)


def test_tap_3_10_sample_has_empty_events_and_an_incomplete_audit() -> None:
    doc = decode_file(load("tap_3_10_asn1c_sample.ber"))
    issues = validate(doc)
    assert [i.code for i in issues if i.severity == "warning"] == ["older-release"]
    assert fatal_fields("tap_3_10_asn1c_sample.ber") == [
        ("missing-field", AUDIT + "callEventDetailsCount"), ("missing-field", AUDIT + "totalCharge"),
        ("missing-field", AUDIT + "totalDiscountValue"), ("missing-field", AUDIT + "totalTaxValue")]
    cdrs, rejects = to_cdrs(doc)
    assert cdrs == [] and [r.index for r in rejects] == [0, 1, 2, 3, 4]
    assert {r.code for r in rejects} == {"missing-field"}


def test_notification_is_accepted() -> None:
    outcome = process_file(load("tap_notification.ber"))
    assert outcome.accepted and outcome.document is not None
    n = outcome.document.notification
    assert n is not None
    assert (n.sender, n.recipient, n.file_sequence_number) == ("ABC08", "XYZ15", "23023")
    assert n.file_available is not None and (n.file_available.local, n.file_available.utc_offset) == (
        "20160523110502", "+0200")
    assert (n.specification_version, n.release_version) == (3, 9)


def test_rap_acknowledgement_is_decoded() -> None:
    outcome = process_file(load("rap_ack.ber"))
    assert outcome.accepted and outcome.document is not None
    ack = outcome.document.acknowledgement
    assert ack is not None
    assert (ack.sender, ack.recipient, ack.rap_file_sequence_number) == ("DGS01", "XYZ02", "123")
    assert ack.ack_file_available is not None and ack.ack_file_available.local == "20160501232324"


def test_rap_mini_without_return_details_is_refused() -> None:
    doc = decode_file(load("rap_mini.ber"))
    rb = doc.return_batch
    assert rb is not None and rb.control is not None and rb.return_details is None
    assert (rb.control.sender, rb.control.recipient, rb.control.rap_file_sequence_number) == ("ABC08", "DEF15", "00023")
    assert (rb.control.rap_specification_version, rb.control.rap_release_version) == (1, 5)
    assert fatal_fields("rap_mini.ber") == [("missing-field", "ReturnBatch.rapAuditControlInfo"),
                                            ("missing-field", "ReturnBatch.returnDetails")]
    outcome = process_file(load("rap_mini.ber"))
    assert not outcome.accepted and "returnDetails" in outcome.reason


def test_nrtrde_file_is_recognised_and_refused() -> None:
    with pytest.raises(Tap3DecodeError) as info:
        decode_file(load("nrt_2_1.ber"))
    assert info.value.code == "not-tap" and "NRTRDE" in info.value.message
