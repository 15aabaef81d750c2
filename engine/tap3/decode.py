"""Decode a TAP 3.12 / RAP file into :mod:`engine.tap3.model` values.

Errors split as roaming clearing splits them:

* BER framing (truncation, length overrun, misplaced end-of-contents, trailing
  bytes) and an unrecognisable file raise :class:`Tap3DecodeError`: the file is
  rejected as a whole.
* A bad *value* inside one call event (non-ASCII text, malformed BCD, empty
  INTEGER) or a missing mandatory item of that event is noted on the event
  (``CallEvent.problems``); only that record is rejected later.

Missing batch-level items are left as ``None`` for :func:`engine.tap3.validate`
to report as fatal, so a defective file can still be displayed.
"""

from __future__ import annotations

from typing import Callable

from engine.gcpause import collector_paused

from . import fields as F
from . import tags as T
from .ber import Tap3DecodeError, children, describe_key, key_number, read_header, top_level
from .events import EVENT_DECODERS, EventDecoder
from .fields import FieldTable
from .model import (
    AccountingInfo,
    Acknowledgement,
    AuditControlInfo,
    BatchControlInfo,
    CallEvent,
    CurrencyConversion,
    DateTimeLong,
    EventKind,
    NetworkInfo,
    Notification,
    RapBatchControlInfo,
    RecEntityInformation,
    ReturnBatch,
    ReturnDetail,
    Tap3Document,
    TransferBatch,
)

# RAP ReturnDetail alternatives as recalled from TD.32 (see tags.py): shown by name when known.
_RETURN_DETAIL_NAMES = {522: "fatalReturn", 523: "missingReturn", 524: "severeReturn", 528: "stopReturn"}


def decode_file(data: bytes) -> Tap3Document:
    """Decode a whole TAP TransferBatch/Notification or RAP ReturnBatch/Acknowledgement.

    Raises :class:`Tap3DecodeError` (with ``code`` and byte ``offset``) when the
    file cannot be decoded; the whole input must be one element, nothing after it.
    """
    buf = bytes(data)
    # Decoding builds many small acyclic objects; the cyclic collector would walk
    # the growing heap again and again for nothing (about 30 % of the time on a
    # 100k-event batch).  Pause it for the duration, restore it whatever happens.
    with collector_paused():
        return _decode(buf)


_DOCUMENTS = (T.TRANSFER_BATCH, T.NOTIFICATION, T.RETURN_BATCH, T.ACKNOWLEDGEMENT)


def _check_first_tag(buf: bytes) -> None:
    """A file that does not even start like a TAP/RAP document (a CSV, a text file) is refused as such,
    before its framing is judged ("trailing bytes" would be true but beside the point)."""
    if not buf:
        return   # top_level says "empty file"
    try:
        key = read_header(buf, 0, len(buf))[0]
    except Tap3DecodeError:
        key = -1
    if key in _DOCUMENTS:
        return
    first = buf[0]
    shown = f"{first:#04x}" + (f" {chr(first)!r}" if 0x20 <= first < 0x7F else "")
    tag = describe_key(key) if key >= 0 else "unreadable"
    raise Tap3DecodeError(
        "not-tap", 0,
        f"not a TAP/RAP/Notification file: first tag {tag} (first byte {shown}); a TAP file starts with "
        "TransferBatch [APPLICATION 1] or Notification [APPLICATION 2], a RAP file with ReturnBatch [APPLICATION 534] "
        "or Acknowledgement [APPLICATION 535]",
    )


def _decode(buf: bytes) -> Tap3Document:
    _check_first_tag(buf)
    key, vs, ve = top_level(buf)
    doc = Tap3Document(kind="", size=len(buf), data=buf)
    if key == T.TRANSFER_BATCH:
        doc.kind = "transferBatch"
        doc.transfer_batch = _transfer_batch(buf, vs, ve, doc)
    elif key == T.NOTIFICATION:
        doc.kind = "notification"
        doc.notification = _notification(buf, vs, ve, doc)
    elif key == T.RETURN_BATCH:
        doc.kind = "returnBatch"
        doc.return_batch = _return_batch(buf, vs, ve, doc)
    elif key == T.ACKNOWLEDGEMENT:
        doc.kind = "acknowledgement"
        doc.acknowledgement = _acknowledgement(buf, vs, ve, doc)
    else:
        raise Tap3DecodeError(
            "not-tap", 0,
            f"outer element is [APPLICATION {key_number(key)}], not a TAP TransferBatch (1), Notification (2), "
            "RAP ReturnBatch (534) or Acknowledgement (535)",
        )
    return doc


def _skip(doc: Tap3Document, path: str, key: int, offset: int) -> None:
    doc.skipped.append((path, key_number(key), offset))


# ---------------------------------------------------------------- TransferBatch


def _transfer_batch(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> TransferBatch:
    items = children(buf, vs, ve)
    if not items or items[0][0] != T.BATCH_CONTROL_INFO:
        if items and items[0][0] == T.NRTRDE_SPECIFICATION_VERSION_NUMBER:
            raise Tap3DecodeError("not-tap", 0, "this is an NRTRDE file (GSMA TD.35), not a TAP TransferBatch")
        raise Tap3DecodeError(
            "missing-field", vs, "TransferBatch must begin with BatchControlInfo [APPLICATION 4]", "TransferBatch"
        )
    batch = TransferBatch(batch_control=None, accounting=None, network=None, events=[], audit=None, has_event_list=False)
    for key, hs, s, e in items:
        if key == T.BATCH_CONTROL_INFO:
            batch.batch_control = _batch_control(buf, s, e, doc)
        elif key == T.ACCOUNTING_INFO:
            batch.accounting = _accounting(buf, s, e, doc)
        elif key == T.NETWORK_INFO:
            batch.network = _network(buf, s, e, doc)
        elif key == T.CALL_EVENT_DETAIL_LIST:
            batch.has_event_list = True
            batch.events = _events(buf, s, e, doc)
        elif key == T.AUDIT_CONTROL_INFO:
            batch.audit = _audit(buf, hs, s, e, doc)
        else:
            _skip(doc, "TransferBatch", key, hs)
    return batch


# Control, accounting, network and audit blocks are groups of simple items: one table each (engine.tap3.fields).
def _read_block(buf: bytes, vs: int, ve: int, doc: Tap3Document, path: str, table: FieldTable) -> dict[str, object]:
    return F.read_group(buf, vs, ve, table, path, lambda where, key, hs: _skip(doc, where, key, hs))


_SENDER_RECIPIENT: FieldTable = {
    T.SENDER: ("sender", F.text, "sender"),
    T.RECIPIENT: ("recipient", F.text, "recipient"),
}
_TAP_HEADER: FieldTable = {
    **_SENDER_RECIPIENT,
    T.FILE_SEQUENCE_NUMBER: ("file_sequence_number", F.number_text, "fileSequenceNumber"),
    T.FILE_CREATION_TIME_STAMP: ("file_creation", F.date_time_long, "fileCreationTimeStamp"),
    T.TRANSFER_CUT_OFF_TIME_STAMP: ("transfer_cut_off", F.date_time_long, "transferCutOffTimeStamp"),
    T.FILE_AVAILABLE_TIME_STAMP: ("file_available", F.date_time_long, "fileAvailableTimeStamp"),
    T.SPECIFICATION_VERSION_NUMBER: ("specification_version", F.number, "specificationVersionNumber"),
    T.RELEASE_VERSION_NUMBER: ("release_version", F.number, "releaseVersionNumber"),
    T.FILE_TYPE_INDICATOR: ("file_type_indicator", F.text, "fileTypeIndicator"),
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", F.number_text, "rapFileSequenceNumber"),
}
_BATCH_CONTROL: FieldTable = {**_TAP_HEADER, T.OPERATOR_SPEC_INFO_LIST: ("operator_spec_information", F.operator_spec, "operatorSpecInformation")}
_RAP_CONTROL: FieldTable = {
    **_SENDER_RECIPIENT,
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", F.number_text, "rapFileSequenceNumber"),
    T.RAP_FILE_CREATION_TIME_STAMP: ("rap_file_creation", F.date_time_long, "rapFileCreationTimeStamp"),
    T.RAP_FILE_AVAILABLE_TIME_STAMP: ("rap_file_available", F.date_time_long, "rapFileAvailableTimeStamp"),
    T.SPECIFICATION_VERSION_NUMBER: ("tap_specification_version", F.number, "specificationVersionNumber"),
    T.RELEASE_VERSION_NUMBER: ("tap_release_version", F.number, "releaseVersionNumber"),
    T.RAP_SPECIFICATION_VERSION_NUMBER: ("rap_specification_version", F.number, "rapSpecificationVersionNumber"),
    T.RAP_RELEASE_VERSION_NUMBER: ("rap_release_version", F.number, "rapReleaseVersionNumber"),
    T.FILE_TYPE_INDICATOR: ("file_type_indicator", F.text, "fileTypeIndicator"),
    T.TAP_CURRENCY: ("tap_currency", F.text, "tapCurrency"),
    T.TAP_DECIMAL_PLACES: ("tap_decimal_places", F.number, "tapDecimalPlaces"),
}
_ACKNOWLEDGEMENT: FieldTable = {
    **_SENDER_RECIPIENT,
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", F.number_text, "rapFileSequenceNumber"),
    T.ACK_FILE_CREATION_TIME_STAMP: ("ack_file_creation", F.date_time_long, "ackFileCreationTimeStamp"),
    T.ACK_FILE_AVAILABLE_TIME_STAMP: ("ack_file_available", F.date_time_long, "ackFileAvailableTimeStamp"),
}
_CURRENCY_CONVERSION: FieldTable = {
    T.EXCHANGE_RATE_CODE: ("code", F.number, "exchangeRateCode"),
    T.NUMBER_OF_DECIMAL_PLACES: ("places", F.number, "numberOfDecimalPlaces"),
    T.EXCHANGE_RATE: ("rate", F.number, "exchangeRate"),
}
_TAXATION: FieldTable = {
    T.TAX_CODE: ("code", F.number, "taxCode"),
    T.TAX_TYPE: ("type", F.text, "taxType"),
    T.TAX_RATE: ("rate", F.text, "taxRate"),
}
_DISCOUNT_APPLIED: FieldTable = {
    T.FIXED_DISCOUNT_VALUE: ("fixed", F.number, "fixedDiscountValue"),
    T.DISCOUNT_RATE: ("rate", F.number, "discountRate"),
}
_DISCOUNTING: FieldTable = {
    T.DISCOUNT_CODE: ("code", F.number, "discountCode"),
    T.DISCOUNT_APPLIED: ("applied", F.group(_DISCOUNT_APPLIED), "discountApplied"),
}
_ACCOUNTING: FieldTable = {
    T.CURRENCY_CONVERSION_LIST: ("conversions", F.span, "currencyConversionInfo"),
    T.LOCAL_CURRENCY: ("local", F.text, "localCurrency"),
    T.TAP_CURRENCY: ("tap", F.text, "tapCurrency"),
    T.TAP_DECIMAL_PLACES: ("places", F.number, "tapDecimalPlaces"),
    T.TAXATION_LIST: ("taxation", F.groups(T.TAXATION, _TAXATION, "taxation"), "taxation"),
    T.DISCOUNTING_LIST: ("discounting", F.groups(T.DISCOUNTING, _DISCOUNTING, "discounting"), "discounting"),
}
_UTC_TIME_OFFSET_INFO: FieldTable = {
    T.UTC_TIME_OFFSET_CODE: ("code", F.number, "utcTimeOffsetCode"),
    T.UTC_TIME_OFFSET: ("offset", F.text, "utcTimeOffset"),
}
_REC_ENTITY_INFORMATION: FieldTable = {
    T.REC_ENTITY_CODE: ("code", F.number, "recEntityCode"),
    T.REC_ENTITY_TYPE: ("type", F.number, "recEntityType"),
    T.REC_ENTITY_ID: ("id", F.text, "recEntityId"),
}
_AUDIT: FieldTable = {
    T.EARLIEST_CALL_TIME_STAMP: ("earliest_call", F.date_time_long, "earliestCallTimeStamp"),
    T.LATEST_CALL_TIME_STAMP: ("latest_call", F.date_time_long, "latestCallTimeStamp"),
    T.TOTAL_CHARGE: ("total_charge", F.number, "totalCharge"),
    T.TOTAL_TAX_VALUE: ("total_tax_value", F.number, "totalTaxValue"),
    T.TOTAL_DISCOUNT_VALUE: ("total_discount_value", F.number, "totalDiscountValue"),
    T.CALL_EVENT_DETAILS_COUNT: ("call_event_details_count", F.number, "callEventDetailsCount"),
    T.TOTAL_CHARGE_REFUND: ("total_charge_refund", F.number, "totalChargeRefund"),
    T.TOTAL_TAX_REFUND: ("total_tax_refund", F.number, "totalTaxRefund"),
    T.TOTAL_DISCOUNT_REFUND: ("total_discount_refund", F.number, "totalDiscountRefund"),
    T.OPERATOR_SPEC_INFO_LIST: ("operator_spec_information", F.operator_spec, "operatorSpecInformation"),
}


def _batch_control(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> BatchControlInfo:
    return BatchControlInfo(**_read_block(buf, vs, ve, doc, "TransferBatch.batchControlInfo", _BATCH_CONTROL))  # type: ignore[arg-type]


def _accounting(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> AccountingInfo:
    path = "TransferBatch.accountingInfo"
    v = _read_block(buf, vs, ve, doc, path, _ACCOUNTING)
    conversions = _conversions(buf, v["conversions"], doc, path + ".currencyConversionInfo")  # type: ignore[arg-type]
    discounting = tuple((d["code"] if d["code"] is not None else -1, _applied(d["applied"])) for d in v["discounting"])  # type: ignore[attr-defined]
    taxation = tuple((t["code"] if t["code"] is not None else -1, t["type"], t["rate"]) for t in v["taxation"])  # type: ignore[attr-defined]
    return AccountingInfo(v["local"], v["tap"], v["places"], conversions, taxation, discounting)  # type: ignore[arg-type]


def _conversions(buf: bytes, where: tuple[int, int] | None, doc: Tap3Document, path: str) -> tuple[CurrencyConversion, ...]:
    """CurrencyConversion items: every one must be complete (the charges depend on it), or the file is refused."""
    if where is None:
        return ()
    out = []
    for c in F.read_groups(buf, where[0], where[1], T.CURRENCY_CONVERSION, _CURRENCY_CONVERSION, path,
                           lambda at, key, hs: _skip(doc, at, key, hs)):
        if c["code"] is None or c["places"] is None or c["rate"] is None:
            raise Tap3DecodeError("missing-field", c["_at"], "CurrencyConversion lacks a mandatory item", path)  # type: ignore[arg-type]
        out.append(CurrencyConversion(c["code"], c["places"], c["rate"]))  # type: ignore[arg-type]
    return tuple(out)


def _applied(applied: object) -> str:
    if not isinstance(applied, dict):
        return ""
    if applied["rate"] is not None:
        return f"rate {applied['rate']}/100 %"
    return f"fixed {applied['fixed']}" if applied["fixed"] is not None else ""


_NETWORK: FieldTable = {
    T.UTC_TIME_OFFSET_INFO_LIST: ("offsets", F.groups(T.UTC_TIME_OFFSET_INFO, _UTC_TIME_OFFSET_INFO, "utcTimeOffsetInfo"), "utcTimeOffsetInfo"),
    T.REC_ENTITY_INFO_LIST: ("entities", F.groups(T.REC_ENTITY_INFORMATION, _REC_ENTITY_INFORMATION, "recEntityInfo"), "recEntityInfo"),
}


def _network(buf: bytes, vs: int, ve: int, doc: Tap3Document, path: str = "TransferBatch.networkInfo") -> NetworkInfo:
    return _network_values(_read_block(buf, vs, ve, doc, path, _NETWORK), path)


def _network_values(v: dict[str, object], path: str) -> NetworkInfo:
    offsets: dict[int, str] = {}
    for o in v["offsets"]:  # type: ignore[attr-defined]
        if o["code"] is None or not o["offset"]:
            raise Tap3DecodeError("missing-field", o["_at"], "UtcTimeOffsetInfo lacks its code or offset", path + ".utcTimeOffsetInfo")
        offsets[o["code"]] = o["offset"]
    entities = []
    for r in v["entities"]:  # type: ignore[attr-defined]
        if r["code"] is None:
            raise Tap3DecodeError("missing-field", r["_at"], "RecEntityInformation lacks recEntityCode", path + ".recEntityInfo")
        entities.append(RecEntityInformation(r["code"], r["type"], r["id"]))
    return NetworkInfo(offsets, tuple(entities))


def _events(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> list[CallEvent]:
    decoder = EventDecoder(buf)
    items = children(buf, vs, ve)
    last = len(items) - 1
    # a record runs to the next one (an indefinite form also owns its end-of-contents)
    return [_event(decoder, key, index, hs, s, e, items[index + 1][1] if index < last else _record_end(buf, hs, e))
            for index, (key, hs, s, e) in enumerate(items)]


def _event(decoder: EventDecoder, key: int, index: int, hs: int, s: int, e: int, record_end: int,
           record_start: int | None = None) -> CallEvent:
    """One CallEventDetail (of a TransferBatch, or returned in a RAP SevereReturn); ``record_start``..``record_end``
    are the bytes a reject keeps (the event itself, or the whole ReturnDetail that carries it)."""
    start = hs if record_start is None else record_start
    entry = EVENT_DECODERS.get(key)
    if entry is None:
        event = CallEvent(EventKind.UNKNOWN, index, start, record_end)
        event.problems.append(("unknown-event-type", "callEventDetails",
                               f"unknown call event type [APPLICATION {key_number(key)}]", hs))
        return event
    kind, method = entry
    event = CallEvent(kind, index, start, record_end)
    try:
        method(decoder, s, e, event)
    except Tap3DecodeError as exc:
        if exc.code != "bad-value":
            raise
        event.problems.append((exc.code, kind.value, exc.message, exc.offset))
    return event


def _record_end(buf: bytes, hs: int, ve: int) -> int:
    """End of the whole record: an indefinite form also owns its end-of-contents octets."""
    return ve + 2 if read_header(buf, hs, ve)[2] < 0 else ve


def _audit(buf: bytes, hs: int, vs: int, ve: int, doc: Tap3Document) -> AuditControlInfo:
    values = _read_block(buf, vs, ve, doc, "TransferBatch.auditControlInfo", _AUDIT)
    return AuditControlInfo(**values, offset=hs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Notification


def _notification(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> Notification:
    values = _read_block(buf, vs, ve, doc, "Notification", _TAP_HEADER)
    return Notification(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- RAP (TD.32)


def _return_batch(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> ReturnBatch:
    control: RapBatchControlInfo | None = None
    details: tuple[ReturnDetail, ...] | None = None
    audit_present = False
    audit_offset = 0
    for key, hs, s, e in children(buf, vs, ve):
        if key == T.RAP_BATCH_CONTROL_INFO:
            control = _rap_control(buf, s, e, doc)
        elif key == T.RETURN_DETAIL_LIST:
            details = _return_details(buf, s, e, doc)
        elif key == T.RAP_AUDIT_CONTROL_INFO:
            audit_present, audit_offset = True, hs
        else:
            _skip(doc, "ReturnBatch", key, hs)
    return ReturnBatch(control, details, audit_present, audit_offset)


_SEVERE_RETURN: FieldTable = {**_NETWORK, T.FILE_SEQUENCE_NUMBER: ("sequence", F.number_text, "fileSequenceNumber")}


def _return_details(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> tuple[ReturnDetail, ...]:
    """Each ReturnDetail; a SevereReturn's call event is decoded as a TransferBatch's is (its index is the
    ReturnDetail's position, its bytes the whole ReturnDetail), placed in time by the UTC offsets the
    SevereReturn carries for it, if any."""
    decoder = EventDecoder(buf)
    out = []
    for index, (key, hs, s, e) in enumerate(children(buf, vs, ve)):
        name = _RETURN_DETAIL_NAMES.get(key_number(key), f"APPLICATION {key_number(key)}")
        end = _record_end(buf, hs, e)
        if key != T.SEVERE_RETURN:
            out.append(ReturnDetail(name, hs, end - hs))
            continue
        path = f"ReturnBatch.returnDetails[{index}].severeReturn"
        events = [(k2, h2, s2, e2) for k2, h2, s2, e2 in children(buf, s, e) if k2 in EVENT_DECODERS]
        # errorDetail, operatorSpecList ... are not needed to place the event: kept as skipped items for display
        v = F.read_group(buf, s, e, _SEVERE_RETURN, path,
                         lambda where, k2, h2: None if k2 in EVENT_DECODERS else _skip(doc, where, k2, h2))
        event = _event(decoder, events[0][0], index, events[0][1], events[0][2], events[0][3], end, hs) if events else None
        network = _network_values(v, path) if v["offsets"] or v["entities"] else None
        out.append(ReturnDetail(name, hs, end - hs, v["sequence"], event, network))  # type: ignore[arg-type]
    return tuple(out)


def _rap_control(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> RapBatchControlInfo:
    return RapBatchControlInfo(**_read_block(buf, vs, ve, doc, "ReturnBatch.rapBatchControlInfo", _RAP_CONTROL))  # type: ignore[arg-type]


def _acknowledgement(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> Acknowledgement:
    return Acknowledgement(**_read_block(buf, vs, ve, doc, "Acknowledgement", _ACKNOWLEDGEMENT))  # type: ignore[arg-type]
