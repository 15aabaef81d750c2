"""The TAP 3.12 event types beyond MO/MT/GPRS/SS, built by hand from TD.57 tags."""

from __future__ import annotations

from engine.cdr import Service
from engine.tap3 import EventKind, decode_file, to_cdrs, validate
from tests import tap3_writer as W
from tests.tap3_writer import encode_integer, tlv


def c(number: int, *parts: bytes) -> bytes:
    return tlv(number, b"".join(parts), constructed=True)


def p(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return tlv(number, encode_integer(value))
    return tlv(number, value.encode() if isinstance(value, str) else value)


STAMP = c(447, p(16, "20240105101500"), p(232, 1))          # ServiceStartTimestamp
CHARGED_PARTY = c(436, p(129, bytes.fromhex("262011234567890f")), p(152, bytes.fromhex("4917")))
CHARGE_INFO = c(69, p(66, "E"), c(64, c(63, p(71, "00"), p(62, 250))))


def messaging_event() -> W.Event:
    ber = c(433, p(439, 1), CHARGED_PARTY, p(435, "MSG-0001"), c(185, p(184, 1)), STAMP,
            c(443, p(444, bytes.fromhex("4930"))), c(258, p(259, 1), p(255, 0), p(256, 0)), p(62, 120),
            c(214, c(213, p(212, 1), p(397, 19))))
    return W.Event(ber, 120, "20240105101500", tax=19)


def mobile_session() -> W.Event:
    ber = c(434, p(440, 1), CHARGED_PARTY, p(435, "SESS-7"), c(185, p(184, 1)), STAMP, p(223, 95),
            c(448, c(449, p(66, "D"), c(258, p(259, 1), p(255, 0), p(256, 0)), c(64, c(63, p(71, "00"), p(62, 300))))))
    return W.Event(ber, 300, "20240105101500")


def service_centre_usage() -> W.Event:
    basic = c(191, c(430, c(286, p(129, bytes.fromhex("262011234567890f")))), p(67, 0), p(402, "4930123"))
    ber = c(12, basic, p(184, 1), CHARGE_INFO, c(192, p(144, 0), p(170, 0), p(145, 1), p(141, 1)),
            c(193, c(88, p(16, "20240105101500"), p(232, 1)), c(76, p(16, "20240105101501"), p(232, 1)), p(73, "O")))
    return W.Event(ber, 250, "20240105101500")


def location_service() -> W.Event:
    usage = c(382, c(383, c(384, p(16, "20240105101500"), p(232, 1))), c(70, CHARGE_INFO))
    return W.Event(c(297, p(184, 1), usage), 250, "20240105101500")


def content_transaction(refund: int = 0) -> W.Event:
    basic = c(304, c(302, p(16, "20240105101500"), p(232, 1)))
    party = c(324, c(310, c(309, p(305, 1), p(287, "262011234567890"))))
    serving = c(335, p(334, "Example Content Ltd"))
    used = c(285, c(352, p(336, 1), p(337, 1), p(340, "ringtone"), p(341, "TX1"), p(250, 1000), p(251, 10),
                    p(344, refund), c(70, CHARGE_INFO)))
    return W.Event(c(17, basic, party, serving, used), 250, "20240105101500")


def test_all_other_event_types_decode_validate_and_convert() -> None:
    events = [messaging_event(), mobile_session(), service_centre_usage(), location_service(), content_transaction()]
    doc = decode_file(W.transfer_batch(events))
    tb = doc.transfer_batch
    assert tb is not None
    assert [e.kind for e in tb.events] == [EventKind.MESSAGING_EVENT, EventKind.MOBILE_SESSION,
                                          EventKind.SERVICE_CENTRE_USAGE, EventKind.LOCATION_SERVICE,
                                          EventKind.CONTENT_TRANSACTION]
    me, ms, scu, lcs, ct = tb.events
    assert (me.imsi, me.msisdn, me.event_reference, me.called_number, me.service_code) == (
        "262011234567890", "4917", "MSG-0001", "4930", 1)
    assert ms.duration == 95 and ms.all_charges()[0].total_charge == 300
    assert scu.imsi == "262011234567890" and scu.start is not None and scu.start.local == "20240105101500"
    assert lcs.start is not None and lcs.rec_entity_codes == (1,)
    assert ct.imsi == "262011234567890" and ct.volume_incoming == 1000
    assert validate(doc) == []        # audit totals (incl. the messaging event's tax) add up
    cdrs, rejects = to_cdrs(doc)
    assert rejects == []
    assert [c.service for c in cdrs] == [Service.SMS, Service.VOICE, Service.SMS, Service.SUPPLEMENTARY, Service.DATA]
    assert cdrs[0].attributes["event_reference"] == "MSG-0001"
    assert [c.charge_micros for c in cdrs] == [120_000, 300_000, 250_000, 250_000, 250_000]


def test_content_refund_counts_towards_total_charge_refund() -> None:
    refund = content_transaction(refund=1)
    data = W.transfer_batch([W.Event(refund.ber, 0, refund.start)])
    issues = validate(decode_file(data))
    assert [(i.code, i.field) for i in issues] == [("missing-field", "TransferBatch.auditControlInfo.totalChargeRefund")]


def test_missing_mandatory_items_of_a_messaging_event() -> None:
    bare = W.Event(c(433, p(439, 1)), 0, "20240105101500")
    issues = validate(decode_file(W.transfer_batch([bare], earliest="20240105101500", latest="20240105101500")))
    assert sorted(i.field for i in issues if i.severity == "record") == [
        "callEventDetails[0].callTypeGroup", "callEventDetails[0].charge", "callEventDetails[0].chargedParty",
        "callEventDetails[0].eventReference", "callEventDetails[0].recEntityCodeList",
        "callEventDetails[0].serviceStartTimestamp"]


def test_unknown_event_type_is_a_record_reject() -> None:
    odd = W.Event(c(500, p(435, "x")), 0, "20240105101500")
    doc = decode_file(W.transfer_batch([odd, W.mo_call("262011234567890", "4917", "4930", "20240105101500", 1, 0)]))
    assert [(i.record_index, i.code) for i in validate(doc) if i.severity == "record"] == [(0, "unknown-event-type")]
    cdrs, rejects = to_cdrs(doc)
    assert len(cdrs) == 1 and rejects[0].kind == "unknown"
