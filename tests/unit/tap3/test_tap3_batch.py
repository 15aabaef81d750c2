"""TransferBatch decoding, clearing validation and CDR conversion on files built by tests.tap3_writer.

Each test starts from a consistent batch and breaks one thing, so the expected
issue list is exact.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from engine.cdr import Direction, Service, cdr_identity
from engine.tap3 import (
    FATAL,
    RECORD,
    EventKind,
    Tap3DecodeError,
    decode_file,
    process_file,
    to_cdrs,
    to_json,
    to_micros,
    validate,
)
from tests import tap3_writer as W
from tests.tap3_writer import tlv

IMSI = "262011234567890"
MSISDN = "491701234567"


def sample_events() -> list[W.Event]:
    return [
        W.mo_call(IMSI, MSISDN, "441234567890", "20240105101500", 61, 1234, tax=100, discount=10),
        W.mt_call(IMSI, MSISDN, "33123456789", "20240105091000", 30, 500),
        W.gprs_call(IMSI, MSISDN, "internet.example", "20240105120000", 600, 1_000_000, 250_000, 3000, charging_id=77),
        W.suppl_service_event(IMSI, "20240106000000"),
        W.mo_call(IMSI, MSISDN, "4917", "20240105101600", 5, 0, tele_service="22"),
    ]


def fatal(issues):  # type: ignore[no-untyped-def]
    return sorted((i.code, i.field) for i in issues if i.severity == FATAL)


def records(issues):  # type: ignore[no-untyped-def]
    return sorted((i.record_index, i.code, i.field) for i in issues if i.severity == RECORD)


def test_consistent_batch_is_accepted_and_fully_decoded() -> None:
    data = W.transfer_batch(sample_events(), sender="DEUXX", recipient="GBRYY", sequence="00042")
    doc = decode_file(data)
    assert doc.kind == "transferBatch"
    tb = doc.transfer_batch
    assert tb is not None and tb.batch_control is not None and tb.accounting is not None and tb.network is not None
    assert (tb.batch_control.sender, tb.batch_control.recipient, tb.batch_control.file_sequence_number) == (
        "DEUXX", "GBRYY", "00042")
    assert (tb.batch_control.specification_version, tb.batch_control.release_version) == (3, 12)
    assert tb.batch_control.file_available is not None and tb.batch_control.file_available.utc_offset == "+0100"
    assert (tb.accounting.local_currency, tb.accounting.tap_decimal_places, tb.accounting.batch_currency) == (
        "EUR", 3, "XDR")
    assert tb.accounting.currency_conversions[0].exchange_rate == 116203
    assert tb.network.utc_offsets == {1: "+0100"}
    assert tb.network.rec_entities[0].id == "MSC01"
    assert [e.kind for e in tb.events] == [EventKind.MOBILE_ORIGINATED_CALL, EventKind.MOBILE_TERMINATED_CALL,
                                          EventKind.GPRS_CALL, EventKind.SUPPL_SERVICE_EVENT,
                                          EventKind.MOBILE_ORIGINATED_CALL]
    mo = tb.events[0]
    assert (mo.imsi, mo.msisdn, mo.called_number, mo.duration) == (IMSI, MSISDN, "441234567890", 61)
    assert mo.services[0].tele_service_code == "11"
    assert mo.all_charges()[0].total_charge == 1234
    assert tb.audit is not None and tb.audit.total_charge == 1234 + 500 + 3000 and tb.audit.call_event_details_count == 5
    assert validate(doc) == []
    outcome = process_file(data)
    assert outcome.accepted and len(outcome.cdrs) == 5 and outcome.rejects == []


def test_cdr_conversion_values() -> None:
    data = W.transfer_batch(sample_events(), sender="DEUXX", sequence="00042", utc_offset="+0100")
    cdrs, rejects = to_cdrs(decode_file(data))
    assert rejects == []
    mo, mt, gprs, ss, sms = cdrs
    assert mo.service is Service.VOICE and mo.direction is Direction.ORIGINATING
    assert mo.start_time == datetime(2024, 1, 5, 9, 15, 0, tzinfo=timezone.utc)   # 10:15 local at +0100
    assert (mo.a_number, mo.b_number, mo.imsi, mo.duration_seconds) == (MSISDN, "441234567890", IMSI, 61)
    assert mo.charge_micros == 1_234_000 and mo.charge_currency == "XDR"   # 1.234 SDR
    assert mo.attributes["tax_micros"] == "100000" and mo.attributes["discount_micros"] == "10000"
    assert mo.visited_network == "DEUXX" and mo.source == "tap3:DEUXX" and mo.origin_id == "00042:0"
    assert mo.cdr_id == cdr_identity("tap3:DEUXX", "00042:0")
    assert mt.direction is Direction.TERMINATING and (mt.a_number, mt.b_number) == ("33123456789", MSISDN)
    assert gprs.service is Service.DATA and gprs.b_number == "internet.example"
    assert (gprs.volume_down_bytes, gprs.volume_up_bytes) == (1_000_000, 250_000)
    assert gprs.attributes["charging_id"] == "77"
    assert ss.service is Service.SUPPLEMENTARY and ss.supplementary_code == "2B" and ss.charge_micros is None
    assert sms.service is Service.SMS and sms.charge_micros == 0


@pytest.mark.parametrize("places, amount, micros", [(0, 7, 7_000_000), (2, 12345, 123_450_000), (3, 1, 1_000),
                                                   (5, 123456, 1_234_560), (6, 42, 42)])
def test_decimal_places_scale_exactly(places: int, amount: int, micros: int) -> None:
    assert to_micros(amount, places) == micros
    data = W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, amount)], decimal_places=places,
                            tap_currency="EUR")
    (cdr,), _ = to_cdrs(decode_file(data))
    assert cdr.charge_micros == micros and cdr.charge_currency == "EUR"


def test_decimal_places_out_of_range_is_fatal() -> None:
    data = W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 5)], decimal_places=7)
    assert ("bad-value", "TransferBatch.accountingInfo.tapDecimalPlaces") in fatal(validate(decode_file(data)))


def test_large_charges_stay_exact() -> None:
    amount = 9 * 10**15 + 7   # 9e18 micro-units: still inside the store's 64-bit column
    data = W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, amount)], decimal_places=3)
    doc = decode_file(data)
    assert validate(doc) == []
    (cdr,), _ = to_cdrs(doc)
    assert cdr.charge_micros == amount * 1000


def test_a_charge_no_store_can_hold_rejects_the_record_not_the_file() -> None:
    amount = 10**20 + 7
    data = W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, amount),
                             W.mo_call(IMSI, MSISDN, "4930", "20240105101600", 1, 5)], decimal_places=3)
    doc = decode_file(data)
    assert validate(doc) == []
    cdrs, rejects = to_cdrs(doc)
    assert [c.charge_micros for c in cdrs] == [5000]
    assert [(r.index, r.code, r.field) for r in rejects] == [(0, "not-convertible", "callEventDetails[0].charge_micros")]


def test_audit_count_mismatch_is_fatal() -> None:
    doc = decode_file(W.transfer_batch(sample_events(), count=4))
    assert fatal(validate(doc)) == [("audit-mismatch", "TransferBatch.auditControlInfo.callEventDetailsCount")]
    assert not process_file(W.transfer_batch(sample_events(), count=4)).accepted


def test_audit_total_charge_mismatch_is_fatal_and_names_the_field() -> None:
    data = W.transfer_batch(sample_events(), total_charge=4733)
    outcome = process_file(data)
    assert not outcome.accepted and outcome.cdrs == []
    assert "TransferBatch.auditControlInfo.totalCharge" in outcome.reason
    assert fatal(outcome.issues) == [("audit-mismatch", "TransferBatch.auditControlInfo.totalCharge")]


def test_audit_time_stamps_must_match_events() -> None:
    doc = decode_file(W.transfer_batch(sample_events(), earliest="20240105091001", latest="20240105235959"))
    assert fatal(validate(doc)) == [("audit-mismatch", "TransferBatch.auditControlInfo.earliestCallTimeStamp"),
                                    ("audit-mismatch", "TransferBatch.auditControlInfo.latestCallTimeStamp")]


def test_negative_volume_rejects_only_that_record() -> None:
    events = sample_events()
    events[2] = W.gprs_call(IMSI, MSISDN, "internet", "20240105120000", 600, -2, 250_000, 3000)
    data = W.transfer_batch(events)
    doc = decode_file(data)
    issues = validate(doc)
    assert fatal(issues) == []
    assert records(issues) == [(2, "negative-volume", "callEventDetails[2].dataVolumeIncoming")]
    cdrs, rejects = to_cdrs(doc)
    assert len(cdrs) == 4 and [r.index for r in rejects] == [2]
    reject = rejects[0]
    assert reject.code == "negative-volume" and reject.kind == "gprsCall"
    assert reject.raw == events[2].ber and data[reject.offset:reject.offset + len(reject.raw)] == reject.raw


def test_unknown_utc_offset_code_rejects_the_record() -> None:
    event = W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 5)
    broken = W.Event(event.ber.replace(b"\x5f\x81\x68\x01\x01", b"\x5f\x81\x68\x01\x09"), 5, event.start)
    doc = decode_file(W.transfer_batch([broken, W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 0)]))
    issues = validate(doc)
    assert records(issues) == [(0, "unknown-utc-offset-code", "callEventDetails[0].callEventStartTimeStamp")]
    cdrs, rejects = to_cdrs(doc)
    assert [r.index for r in rejects] == [0] and len(cdrs) == 1


def test_bad_value_inside_an_event_is_a_record_reject_not_fatal() -> None:
    event = W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 5)
    broken = W.Event(event.ber.replace(b"20240105101500", b"2024010510150X"), 5, event.start)
    doc = decode_file(W.transfer_batch([broken], earliest="20240105101500", latest="20240105101500"))
    issues = validate(doc)
    assert records(issues) == [(0, "bad-value", "callEventDetails[0].mobileOriginatedCall")]
    cdrs, rejects = to_cdrs(doc)
    assert cdrs == [] and rejects[0].index == 0


def test_missing_mandatory_event_items_are_record_rejects() -> None:
    bare_mt = tlv(10, b"", constructed=True)
    data = W.transfer_batch([W.Event(bare_mt, 0, "20240105101500"), W.mo_call(IMSI, MSISDN, "4930",
                                                                              "20240105101500", 1, 5)])
    issues = validate(decode_file(data))
    assert fatal(issues) == []
    assert records(issues) == [(0, "missing-field", "callEventDetails[0].basicCallInformation"),
                               (0, "missing-field", "callEventDetails[0].basicServiceUsedList"),
                               (0, "missing-field", "callEventDetails[0].locationInformation")]


def test_indefinite_length_batch_decodes_like_definite() -> None:
    events = sample_events()
    definite = decode_file(W.transfer_batch(events))
    indefinite = decode_file(W.transfer_batch(events, indefinite=True))
    assert validate(indefinite) == []
    strip = lambda doc: [(e.kind, e.imsi, e.start, e.duration, e.all_charges()) for e in doc.transfer_batch.events]  # noqa: E731
    assert strip(definite) == strip(indefinite)


def test_older_release_is_a_warning_and_unknown_release_fatal() -> None:
    events = [W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 5)]
    assert [(i.severity, i.code) for i in validate(decode_file(W.transfer_batch(events, release=11)))] == [
        ("warning", "older-release")]
    assert fatal(validate(decode_file(W.transfer_batch(events, release=13)))) == [
        ("unsupported-version", "TransferBatch.batchControlInfo.releaseVersionNumber")]


def test_missing_batch_groups_are_fatal() -> None:
    control = W.transfer_batch([])  # take its BatchControlInfo only
    doc = decode_file(control)
    assert validate(doc) == []   # an empty but complete batch is consistent
    only_control = tlv(1, tlv(4, tlv(196, b"DEUXX"), constructed=True), constructed=True)
    assert fatal(validate(decode_file(only_control))) == [
        ("missing-field", "TransferBatch.auditControlInfo"),
        ("missing-field", "TransferBatch.batchControlInfo.fileAvailableTimeStamp"),
        ("missing-field", "TransferBatch.batchControlInfo.fileSequenceNumber"),
        ("missing-field", "TransferBatch.batchControlInfo.recipient"),
        ("missing-field", "TransferBatch.batchControlInfo.releaseVersionNumber"),
        ("missing-field", "TransferBatch.batchControlInfo.specificationVersionNumber"),
        ("missing-field", "TransferBatch.batchControlInfo.transferCutOffTimeStamp"),
        ("missing-field", "TransferBatch.callEventDetails"),
        ("missing-field", "TransferBatch.networkInfo"),
    ]


def test_batch_must_start_with_batch_control() -> None:
    with pytest.raises(Tap3DecodeError) as info:
        decode_file(tlv(1, tlv(6, b"", constructed=True), constructed=True))
    assert info.value.code == "missing-field"


def test_unknown_outer_element() -> None:
    with pytest.raises(Tap3DecodeError) as info:
        decode_file(tlv(7, b"", constructed=True))
    assert (info.value.code, info.value.offset) == ("not-tap", 0)


def test_to_json_is_plain_data() -> None:
    import json

    doc = decode_file(W.transfer_batch(sample_events()))
    rendered = to_json(doc)
    json.dumps(rendered)
    events = rendered["transferBatch"]["events"]
    assert events[0]["kind"] == "mobileOriginatedCall" and events[0]["start_utc"] == "2024-01-05T09:15:00Z"
    assert "data" not in json.dumps(list(rendered))


def test_local_currency_conversion_uses_the_exchange_rate_exactly() -> None:
    # 1.234 SDR x 1.16203 EUR/SDR = 1.43394502 EUR -> 1_433_945 micro-EUR (half up)
    (cdr,), _ = to_cdrs(decode_file(W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 1234)])))
    assert cdr.charge_micros == 1_234_000 and cdr.charge_currency == "XDR"
    assert cdr.attributes["local_charge_micros"] == "1433945" and cdr.attributes["local_currency"] == "EUR"
    # 0.0005 SDR x 1.16203 = 0.000581015 -> 581 micro-EUR
    (cdr,), _ = to_cdrs(decode_file(W.transfer_batch([W.mo_call(IMSI, MSISDN, "4930", "20240105101500", 1, 5)],
                                                     decimal_places=4)))
    assert cdr.attributes["local_charge_micros"] == "581"
