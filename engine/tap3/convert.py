"""TAP call events -> normalised CDRs (:class:`engine.cdr.MediatedCdr`).

Every event ends in exactly one place: a CDR, or a :class:`RecordReject` with
its index, byte offset, reason and original bytes.  Charges are converted from
TAP units (``10**-tapDecimalPlaces`` of the batch currency) to integer
micro-units without floats; the batch currency is the TAP currency, or SDR
(``XDR``) when the file names none (TD.57).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.cdr import RAP_RETURN_ATTRIBUTE, CdrValueError, Direction, MediatedCdr, Service, cdr_identity, validate as validate_cdr
from engine.gcpause import collector_paused

from .model import (
    AccountingInfo,
    BatchControlInfo,
    CallEvent,
    EventKind,
    ReturnBatch,
    ReturnDetail,
    ServiceUsed,
    Tap3Document,
    TransferBatch,
)
from .validate import MAX_TAP_DECIMAL_PLACES, RECORD, check_event, event_to_utc, event_totals

MICROS_DIGITS = 6


@dataclass(frozen=True, slots=True)
class RecordReject:
    """A call event that could not become a CDR."""

    index: int          # position in callEventDetails, from 0
    offset: int         # byte offset of the record in the file
    kind: str           # TD.57 name of the event type
    code: str
    field: str
    reason: str
    raw: bytes          # the record's original BER bytes


def to_micros(amount: int, tap_decimal_places: int) -> int:
    """A TAP AbsoluteAmount in micro-units, exactly (TD.57 allows at most 6 decimal places)."""
    if not 0 <= tap_decimal_places <= MAX_TAP_DECIMAL_PLACES:
        raise ValueError(f"tapDecimalPlaces {tap_decimal_places} outside 0..{MAX_TAP_DECIMAL_PLACES}")
    return amount * 10 ** (MICROS_DIGITS - tap_decimal_places)


def local_micros(event: CallEvent, batch: TransferBatch) -> int | None:
    """The event's charge converted to the local currency with the batch's exchange rates.

    TD.57: local = TAP amount x exchangeRate / 10**numberOfDecimalPlaces.  Integer
    arithmetic, rounded half up to the micro-unit; None when a charged item with a
    non-zero charge names no exchange rate (nothing to convert with).
    """
    acc = batch.accounting
    if acc is None or acc.tap_decimal_places is None:
        return None
    rates = {c.exchange_rate_code: c for c in acc.currency_conversions}
    total = 0
    for info in event.all_charges():
        charge = info.total_charge
        if not charge:
            continue
        conv = rates.get(info.exchange_rate_code) if info.exchange_rate_code is not None else None
        if conv is None:
            return None
        scaled = to_micros(charge, acc.tap_decimal_places) * conv.exchange_rate
        divisor = 10 ** conv.decimal_places
        value = (2 * abs(scaled) + divisor) // (2 * divisor)
        total += -value if (scaled < 0) != info.refund else value
    return total


def to_cdrs(doc: Tap3Document, namespace: str = "") -> tuple[list[MediatedCdr], list[RecordReject]]:
    """Normalised CDRs and record rejects of a TransferBatch's call events, or of the call events a RAP
    ReturnBatch returns (:func:`returned_events`); empty for other documents.

    ``namespace``: the submitting tenant, part of every CDR identity (:func:`engine.cdr.cdr_identity`).

    File-level (fatal) problems are not checked here: call :func:`validate` first
    and refuse the file when it reports a fatal issue.
    """
    records: list[tuple[TransferBatch, CallEvent, ReturnDetail | None]]
    if doc.transfer_batch is not None:
        batch = doc.transfer_batch
        records = [(batch, event, None) for event in batch.events]
    elif doc.return_batch is not None:
        records = list(returned_events(doc.return_batch))
    else:
        return [], []
    with collector_paused():   # many acyclic objects: see decode_file
        return _convert(doc, records, namespace)


def record_spans(doc: Tap3Document) -> dict[int, tuple[int, int]]:
    """Where each call event record of :func:`to_cdrs` is in the file, by its index: (offset, end)."""
    if doc.transfer_batch is not None:
        return {e.index: (e.offset, e.end) for e in doc.transfer_batch.events}
    if doc.return_batch is not None:
        return {e.index: (e.offset, e.end) for _b, e, _r in returned_events(doc.return_batch)}
    return {}


def returned_events(rb: ReturnBatch) -> list[tuple[TransferBatch, CallEvent, ReturnDetail]]:
    """The call events a ReturnBatch returns (its severe returns), each with the batch context that a TransferBatch
    would give it: the TAP file's sender (the RAP's recipient) and sequence number, the RAP's TAP currency and
    decimal places, and the UTC offsets the return carries.  No currency conversion table comes with a return."""
    c = rb.control
    out = []
    for detail in rb.return_details or ():
        if detail.event is None:
            continue
        control = BatchControlInfo(c.recipient if c else "", c.sender if c else "", detail.file_sequence_number,
                                   None, None, None, None, None)
        accounting = AccountingInfo("", c.tap_currency if c else "", c.tap_decimal_places if c else None)
        out.append((TransferBatch(control, accounting, detail.network, [detail.event], None), detail.event, detail))
    return out


def _convert(doc: Tap3Document, records: list[tuple[TransferBatch, CallEvent, ReturnDetail | None]],
             namespace: str) -> tuple[list[MediatedCdr], list[RecordReject]]:
    cdrs: list[MediatedCdr] = []
    rejects: list[RecordReject] = []
    for batch, event, returned in records:
        raw = doc.data[event.offset:event.end]
        # a returned event's exchange rate code refers to the TAP file's table, which a return does not carry
        problems = [i for i in check_event(event, batch.network, batch.accounting, rates_known=returned is None)
                    if i.severity == RECORD]
        if problems:
            first = problems[0]
            reason = "; ".join(f"{p.field}: {p.message}" for p in problems)
            rejects.append(RecordReject(event.index, event.offset, event.kind.value, first.code, first.field, reason, raw))
            continue
        try:
            cdr = _cdr(batch, event, namespace) if returned is None else _returned_cdr(doc, batch, event, namespace)
            validate_cdr(cdr)
        except (ValueError, CdrValueError) as exc:
            field = exc.field if isinstance(exc, CdrValueError) else "callEventDetails"
            rejects.append(RecordReject(event.index, event.offset, event.kind.value, "not-convertible",
                                        f"callEventDetails[{event.index}].{field}", str(exc), raw))
            continue
        cdrs.append(cdr)
    return cdrs, rejects


def _returned_cdr(doc: Tap3Document, batch: TransferBatch, event: CallEvent, namespace: str) -> MediatedCdr:
    """A returned event's CDR: the event as its TAP file gave it, marked as returned, with an identity of its own
    (the RAP sender, the RAP file's sequence number and the return's position), so it is never taken for the
    TAP file's CDR of the same event."""
    rb = doc.return_batch
    control = rb.control if rb is not None else None
    cdr = _cdr(batch, event, namespace)
    rap_sender = control.sender if control else ""
    rap_sequence = control.rap_file_sequence_number if control else ""
    source, origin_id = f"rap:{rap_sender}", f"{rap_sequence}:{event.index}"
    attributes = {**cdr.attributes, RAP_RETURN_ATTRIBUTE: "severeReturn", "rap_file_sequence_number": rap_sequence}
    return replace(cdr, cdr_id=cdr_identity(source, origin_id, namespace), source=source, origin_id=origin_id,
                   attributes=attributes)


def _service(event: CallEvent) -> Service:
    kind = event.kind
    if kind is EventKind.GPRS_CALL or kind is EventKind.CONTENT_TRANSACTION:
        return Service.DATA
    if kind is EventKind.SUPPL_SERVICE_EVENT or kind is EventKind.LOCATION_SERVICE:
        return Service.SUPPLEMENTARY
    if kind is EventKind.SERVICE_CENTRE_USAGE or kind is EventKind.MESSAGING_EVENT:
        return Service.SMS
    if kind is EventKind.MOBILE_SESSION:
        return Service.VOICE
    used: ServiceUsed | None = event.services[0] if event.services else None
    if used is None:
        return Service.VOICE
    if used.bearer_service_code:
        return Service.DATA   # circuit-switched data / fax bearer
    # TS 22.003 teleservice codes: 1x speech, 2x short message
    return Service.SMS if used.tele_service_code.startswith("2") else Service.VOICE


def _cdr(batch: TransferBatch, event: CallEvent, namespace: str = "") -> MediatedCdr:
    bc = batch.batch_control
    acc = batch.accounting
    sender = bc.sender if bc else ""
    sequence = bc.file_sequence_number if bc else ""
    if event.start is None:
        raise ValueError("call event has no start time stamp")
    start = event_to_utc(event.start, batch.network)
    totals = event_totals(event)
    charge = totals.charge - totals.charge_refund
    has_charge = bool(event.all_charges()) or event.camel_invocation_fee is not None
    places = acc.tap_decimal_places if acc is not None and acc.tap_decimal_places is not None else None
    charge_micros = to_micros(charge, places) if has_charge and places is not None else None

    direction = Direction.TERMINATING if event.kind is EventKind.MOBILE_TERMINATED_CALL else Direction.ORIGINATING
    if direction is Direction.TERMINATING:
        a_number, b_number = event.calling_number, event.msisdn
    elif event.kind is EventKind.GPRS_CALL:
        a_number, b_number = event.msisdn, event.access_point_name_ni
    else:
        a_number, b_number = event.msisdn, event.called_number or event.dialled_digits

    attributes = {"tap_kind": event.kind.value, "file_sequence_number": sequence}
    if bc is not None and bc.recipient:
        attributes["recipient"] = bc.recipient
    if event.services:
        used = event.services[0]
        if used.tele_service_code:
            attributes["tele_service_code"] = used.tele_service_code
        if used.bearer_service_code:
            attributes["bearer_service_code"] = used.bearer_service_code
    if event.charging_id is not None:
        attributes["charging_id"] = str(event.charging_id)
    if event.event_reference:
        attributes["event_reference"] = event.event_reference
    if event.rec_entity_codes:
        attributes["rec_entity_codes"] = ",".join(str(c) for c in event.rec_entity_codes)
    local = local_micros(event, batch) if has_charge else None
    if local is not None and acc is not None and acc.local_currency:
        attributes["local_charge_micros"] = str(local)
        attributes["local_currency"] = acc.local_currency
    if places is not None and (totals.tax or totals.discount):
        attributes["tax_micros"] = str(to_micros(totals.tax, places))
        attributes["discount_micros"] = str(to_micros(totals.discount, places))

    source = f"tap3:{sender}"
    origin_id = f"{sequence}:{event.index}"
    return MediatedCdr(
        cdr_id=cdr_identity(source, origin_id, namespace),
        source=source,
        origin_id=origin_id,
        service=_service(event),
        direction=direction,
        start_time=start,
        a_number=a_number,
        b_number=b_number,
        imsi=event.imsi,
        duration_seconds=event.duration or 0,
        volume_up_bytes=event.volume_outgoing or 0,
        volume_down_bytes=event.volume_incoming or 0,
        visited_network=sender,
        supplementary_code=event.suppl_service_code,
        charge_micros=charge_micros,
        charge_currency=acc.batch_currency if acc is not None else "",
        attributes=attributes,
    )
