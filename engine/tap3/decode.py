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

import gc
from typing import Callable

from . import tags as T
from .ber import Tap3DecodeError, ascii_text, children, describe_key, digits, integer, key_number, read_header, top_level
from .events import EVENT_DECODERS, EventDecoder
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
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _decode(buf)
    finally:
        if paused:
            gc.enable()


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


def _datetime_long(buf: bytes, vs: int, ve: int, path: str) -> DateTimeLong:
    local = offset = ""
    for key, hs, s, e in children(buf, vs, ve):
        if key == T.LOCAL_TIME_STAMP:
            local = digits(buf, s, e)
        elif key == T.UTC_TIME_OFFSET:
            offset = ascii_text(buf, s, e)
    if not local or not offset:
        raise Tap3DecodeError("missing-field", vs, "time stamp lacks localTimeStamp or utcTimeOffset", path)
    return DateTimeLong(local, offset)


def _operator_spec(buf: bytes, vs: int, ve: int) -> tuple[str, ...]:
    return tuple(ascii_text(buf, s, e) for key, _h, s, e in children(buf, vs, ve) if key == T.OPERATOR_SPEC_INFORMATION)


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


# Control blocks are flat lists of simple items: one table per block says, for each tag,
# which attribute it fills, how its bytes are read and its TD.57 name (for error paths).
_Reader = Callable[[bytes, int, int, str], object]


def _text(buf: bytes, s: int, e: int, _path: str) -> object:
    return ascii_text(buf, s, e)


def _digits(buf: bytes, s: int, e: int, _path: str) -> object:
    return digits(buf, s, e)


def _int(buf: bytes, s: int, e: int, _path: str) -> object:
    return integer(buf, s, e)


def _time(buf: bytes, s: int, e: int, path: str) -> object:
    return _datetime_long(buf, s, e, path)


def _opspec(buf: bytes, s: int, e: int, _path: str) -> object:
    return _operator_spec(buf, s, e)


_TEXT_READERS = (_text, _digits)
FieldTable = dict[int, tuple[str, _Reader, str]]


def _read_block(buf: bytes, vs: int, ve: int, doc: Tap3Document, path: str, table: FieldTable) -> dict[str, object]:
    """Decode a control block by ``table``; absent text items are "", other absent items None or ()."""
    values: dict[str, object] = {
        attr: "" if reader in _TEXT_READERS else () if reader is _opspec else None for attr, reader, _name in table.values()
    }
    for key, hs, s, e in children(buf, vs, ve):
        spec = table.get(key)
        if spec is None:
            _skip(doc, path, key, hs)
            continue
        attr, reader, asn_name = spec
        values[attr] = reader(buf, s, e, f"{path}.{asn_name}")
    return values


_SENDER_RECIPIENT: FieldTable = {
    T.SENDER: ("sender", _text, "sender"),
    T.RECIPIENT: ("recipient", _text, "recipient"),
}
_TAP_HEADER: FieldTable = {
    **_SENDER_RECIPIENT,
    T.FILE_SEQUENCE_NUMBER: ("file_sequence_number", _digits, "fileSequenceNumber"),
    T.FILE_CREATION_TIME_STAMP: ("file_creation", _time, "fileCreationTimeStamp"),
    T.TRANSFER_CUT_OFF_TIME_STAMP: ("transfer_cut_off", _time, "transferCutOffTimeStamp"),
    T.FILE_AVAILABLE_TIME_STAMP: ("file_available", _time, "fileAvailableTimeStamp"),
    T.SPECIFICATION_VERSION_NUMBER: ("specification_version", _int, "specificationVersionNumber"),
    T.RELEASE_VERSION_NUMBER: ("release_version", _int, "releaseVersionNumber"),
    T.FILE_TYPE_INDICATOR: ("file_type_indicator", _text, "fileTypeIndicator"),
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", _digits, "rapFileSequenceNumber"),
}
_BATCH_CONTROL: FieldTable = {**_TAP_HEADER, T.OPERATOR_SPEC_INFO_LIST: ("operator_spec_information", _opspec, "operatorSpecInformation")}
_RAP_CONTROL: FieldTable = {
    **_SENDER_RECIPIENT,
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", _digits, "rapFileSequenceNumber"),
    T.RAP_FILE_CREATION_TIME_STAMP: ("rap_file_creation", _time, "rapFileCreationTimeStamp"),
    T.RAP_FILE_AVAILABLE_TIME_STAMP: ("rap_file_available", _time, "rapFileAvailableTimeStamp"),
    T.SPECIFICATION_VERSION_NUMBER: ("tap_specification_version", _int, "specificationVersionNumber"),
    T.RELEASE_VERSION_NUMBER: ("tap_release_version", _int, "releaseVersionNumber"),
    T.RAP_SPECIFICATION_VERSION_NUMBER: ("rap_specification_version", _int, "rapSpecificationVersionNumber"),
    T.RAP_RELEASE_VERSION_NUMBER: ("rap_release_version", _int, "rapReleaseVersionNumber"),
    T.FILE_TYPE_INDICATOR: ("file_type_indicator", _text, "fileTypeIndicator"),
}
_ACKNOWLEDGEMENT: FieldTable = {
    **_SENDER_RECIPIENT,
    T.RAP_FILE_SEQUENCE_NUMBER: ("rap_file_sequence_number", _digits, "rapFileSequenceNumber"),
    T.ACK_FILE_CREATION_TIME_STAMP: ("ack_file_creation", _time, "ackFileCreationTimeStamp"),
    T.ACK_FILE_AVAILABLE_TIME_STAMP: ("ack_file_available", _time, "ackFileAvailableTimeStamp"),
}


def _batch_control(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> BatchControlInfo:
    return BatchControlInfo(**_read_block(buf, vs, ve, doc, "TransferBatch.batchControlInfo", _BATCH_CONTROL))  # type: ignore[arg-type]


def _accounting(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> AccountingInfo:
    path = "TransferBatch.accountingInfo"
    local = tap = ""
    places: int | None = None
    conversions: list[CurrencyConversion] = []
    taxation: list[tuple[int, str, str]] = []
    discounting: list[tuple[int, str]] = []
    for key, hs, s, e in children(buf, vs, ve):
        if key == T.LOCAL_CURRENCY:
            local = ascii_text(buf, s, e)
        elif key == T.TAP_CURRENCY:
            tap = ascii_text(buf, s, e)
        elif key == T.TAP_DECIMAL_PLACES:
            places = integer(buf, s, e)
        elif key == T.CURRENCY_CONVERSION_LIST:
            for k2, h2, s2, e2 in children(buf, s, e):
                if k2 != T.CURRENCY_CONVERSION:
                    _skip(doc, path + ".currencyConversionInfo", k2, h2)
                    continue
                code = dp = rate = None
                for k3, _h3, s3, e3 in children(buf, s2, e2):
                    if k3 == T.EXCHANGE_RATE_CODE:
                        code = integer(buf, s3, e3)
                    elif k3 == T.NUMBER_OF_DECIMAL_PLACES:
                        dp = integer(buf, s3, e3)
                    elif k3 == T.EXCHANGE_RATE:
                        rate = integer(buf, s3, e3)
                if code is None or dp is None or rate is None:
                    raise Tap3DecodeError("missing-field", h2, "CurrencyConversion lacks a mandatory item",
                                          path + ".currencyConversionInfo")
                conversions.append(CurrencyConversion(code, dp, rate))
        elif key == T.TAXATION_LIST:
            for k2, h2, s2, e2 in children(buf, s, e):
                tcode, ttype, trate = -1, "", ""
                for k3, _h3, s3, e3 in children(buf, s2, e2):
                    if k3 == T.TAX_CODE:
                        tcode = integer(buf, s3, e3)
                    elif k3 == T.TAX_TYPE:
                        ttype = ascii_text(buf, s3, e3)
                    elif k3 == T.TAX_RATE:
                        trate = ascii_text(buf, s3, e3)
                taxation.append((tcode, ttype, trate))
        elif key == T.DISCOUNTING_LIST:
            for k2, h2, s2, e2 in children(buf, s, e):
                dcode, applied = -1, ""
                for k3, _h3, s3, e3 in children(buf, s2, e2):
                    if k3 == T.DISCOUNT_CODE:
                        dcode = integer(buf, s3, e3)
                    elif k3 == T.DISCOUNT_APPLIED:
                        for k4, _h4, s4, e4 in children(buf, s3, e3):
                            if k4 == T.FIXED_DISCOUNT_VALUE:
                                applied = f"fixed {integer(buf, s4, e4)}"
                            elif k4 == T.DISCOUNT_RATE:
                                applied = f"rate {integer(buf, s4, e4)}/100 %"
                discounting.append((dcode, applied))
        else:
            _skip(doc, path, key, hs)
    return AccountingInfo(local, tap, places, tuple(conversions), tuple(taxation), tuple(discounting))


def _network(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> NetworkInfo:
    path = "TransferBatch.networkInfo"
    offsets: dict[int, str] = {}
    entities: list[RecEntityInformation] = []
    for key, hs, s, e in children(buf, vs, ve):
        if key == T.UTC_TIME_OFFSET_INFO_LIST:
            for k2, h2, s2, e2 in children(buf, s, e):
                code, text = None, ""
                for k3, _h3, s3, e3 in children(buf, s2, e2):
                    if k3 == T.UTC_TIME_OFFSET_CODE:
                        code = integer(buf, s3, e3)
                    elif k3 == T.UTC_TIME_OFFSET:
                        text = ascii_text(buf, s3, e3)
                if code is None or not text:
                    raise Tap3DecodeError("missing-field", h2, "UtcTimeOffsetInfo lacks its code or offset",
                                          path + ".utcTimeOffsetInfo")
                offsets[code] = text
        elif key == T.REC_ENTITY_INFO_LIST:
            for k2, h2, s2, e2 in children(buf, s, e):
                rcode, rtype, rid = None, None, ""
                for k3, _h3, s3, e3 in children(buf, s2, e2):
                    if k3 == T.REC_ENTITY_CODE:
                        rcode = integer(buf, s3, e3)
                    elif k3 == T.REC_ENTITY_TYPE:
                        rtype = integer(buf, s3, e3)
                    elif k3 == T.REC_ENTITY_ID:
                        rid = ascii_text(buf, s3, e3)
                if rcode is None:
                    raise Tap3DecodeError("missing-field", h2, "RecEntityInformation lacks recEntityCode",
                                          path + ".recEntityInfo")
                entities.append(RecEntityInformation(rcode, rtype, rid))
        else:
            _skip(doc, path, key, hs)
    return NetworkInfo(offsets, tuple(entities))


def _events(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> list[CallEvent]:
    decoder = EventDecoder(buf)
    out: list[CallEvent] = []
    items = children(buf, vs, ve)
    last = len(items) - 1
    for index, (key, hs, s, e) in enumerate(items):
        entry = EVENT_DECODERS.get(key)
        # a record runs to the next one (an indefinite form also owns its end-of-contents)
        record_end = items[index + 1][1] if index < last else _record_end(buf, hs, e)
        if entry is None:
            event = CallEvent(EventKind.UNKNOWN, index, hs, record_end)
            event.problems.append(("unknown-event-type", "callEventDetails",
                                   f"unknown call event type [APPLICATION {key_number(key)}]", hs))
            out.append(event)
            continue
        kind, method = entry
        event = CallEvent(kind, index, hs, record_end)
        try:
            method(decoder, s, e, event)
        except Tap3DecodeError as exc:
            if exc.code != "bad-value":
                raise
            event.problems.append((exc.code, kind.value, exc.message, exc.offset))
        out.append(event)
    return out


def _record_end(buf: bytes, hs: int, ve: int) -> int:
    """End of the whole record: an indefinite form also owns its end-of-contents octets."""
    return ve + 2 if read_header(buf, hs, ve)[2] < 0 else ve


def _audit(buf: bytes, hs: int, vs: int, ve: int, doc: Tap3Document) -> AuditControlInfo:
    path = "TransferBatch.auditControlInfo"
    f: dict[str, object] = {}
    for key, h2, s, e in children(buf, vs, ve):
        if key == T.EARLIEST_CALL_TIME_STAMP:
            f["earliest_call"] = _datetime_long(buf, s, e, path + ".earliestCallTimeStamp")
        elif key == T.LATEST_CALL_TIME_STAMP:
            f["latest_call"] = _datetime_long(buf, s, e, path + ".latestCallTimeStamp")
        elif key == T.TOTAL_CHARGE:
            f["total_charge"] = integer(buf, s, e)
        elif key == T.TOTAL_TAX_VALUE:
            f["total_tax_value"] = integer(buf, s, e)
        elif key == T.TOTAL_DISCOUNT_VALUE:
            f["total_discount_value"] = integer(buf, s, e)
        elif key == T.CALL_EVENT_DETAILS_COUNT:
            f["call_event_details_count"] = integer(buf, s, e)
        elif key == T.TOTAL_CHARGE_REFUND:
            f["total_charge_refund"] = integer(buf, s, e)
        elif key == T.TOTAL_TAX_REFUND:
            f["total_tax_refund"] = integer(buf, s, e)
        elif key == T.TOTAL_DISCOUNT_REFUND:
            f["total_discount_refund"] = integer(buf, s, e)
        elif key == T.OPERATOR_SPEC_INFO_LIST:
            f["operator_spec_information"] = _operator_spec(buf, s, e)
        else:
            _skip(doc, path, key, h2)
    return AuditControlInfo(
        earliest_call=f.get("earliest_call"),  # type: ignore[arg-type]
        latest_call=f.get("latest_call"),  # type: ignore[arg-type]
        total_charge=f.get("total_charge"),  # type: ignore[arg-type]
        total_tax_value=f.get("total_tax_value"),  # type: ignore[arg-type]
        total_discount_value=f.get("total_discount_value"),  # type: ignore[arg-type]
        call_event_details_count=f.get("call_event_details_count"),  # type: ignore[arg-type]
        total_charge_refund=f.get("total_charge_refund"),  # type: ignore[arg-type]
        total_tax_refund=f.get("total_tax_refund"),  # type: ignore[arg-type]
        total_discount_refund=f.get("total_discount_refund"),  # type: ignore[arg-type]
        operator_spec_information=f.get("operator_spec_information", ()),  # type: ignore[arg-type]
        offset=hs,
    )


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
            details = tuple(
                ReturnDetail(_RETURN_DETAIL_NAMES.get(key_number(k2), f"APPLICATION {key_number(k2)}"), h2, e2 - h2)
                for k2, h2, _s2, e2 in children(buf, s, e)
            )
        elif key == T.RAP_AUDIT_CONTROL_INFO:
            audit_present, audit_offset = True, hs
        else:
            _skip(doc, "ReturnBatch", key, hs)
    return ReturnBatch(control, details, audit_present, audit_offset)


def _rap_control(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> RapBatchControlInfo:
    return RapBatchControlInfo(**_read_block(buf, vs, ve, doc, "ReturnBatch.rapBatchControlInfo", _RAP_CONTROL))  # type: ignore[arg-type]


def _acknowledgement(buf: bytes, vs: int, ve: int, doc: Tap3Document) -> Acknowledgement:
    return Acknowledgement(**_read_block(buf, vs, ve, doc, "Acknowledgement", _ACKNOWLEDGEMENT))  # type: ignore[arg-type]
