"""Validation of decoded TAP/RAP files as roaming clearing does it.

Three severities:

* ``fatal`` — the whole file is rejected: a missing mandatory batch item, an
  unsupported version, audit totals (charge, tax, discount, event count,
  earliest/latest call time stamps) that do not match the call events.
* ``record`` — one call event is rejected (its index, byte offset and original
  bytes travel with the reject): a missing mandatory item, a negative volume,
  an unknown UTC offset code ...
* ``warning`` — worth showing, changes nothing (test data, older release).

Tests match on ``code`` and ``field``; the message is for people.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .model import (
    AccountingInfo,
    CallEvent,
    DateTime,
    DateTimeLong,
    EventKind,
    NetworkInfo,
    Tap3Document,
    TransferBatch,
)

FATAL = "fatal"
RECORD = "record"
WARNING = "warning"

SUPPORTED_RELEASES = (10, 11, 12)   # decoded with the 3.12 grammar, which extends 3.10/3.11
MAX_TAP_DECIMAL_PLACES = 6          # TD.57 TapDecimalPlaces range


@dataclass(frozen=True, slots=True)
class Tap3Issue:
    severity: str
    code: str
    field: str
    message: str
    offset: int | None = None
    record_index: int | None = None

    def line(self) -> str:
        where = f"byte {self.offset}: " if self.offset is not None else ""
        record = f"record {self.record_index}: " if self.record_index is not None else ""
        return f"{where}{record}{self.severity}: {self.code}: {self.field}: {self.message}"


_OFFSET_RE = re.compile(r"^[+-](?:0\d|1[0-4])[0-5]\d$")


@lru_cache(maxsize=256)   # a batch uses a handful of offsets, every event refers to one
def utc_offset(text: str) -> timedelta:
    """``+0200`` -> 2 hours; raises ValueError for anything else."""
    if not _OFFSET_RE.match(text):
        raise ValueError(f"bad UTC offset {text!r}")
    delta = timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
    return -delta if text[0] == "-" else delta


def local_time(text: str) -> datetime:
    """``CCYYMMDDhhmmss`` -> naive datetime; raises ValueError."""
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"local time stamp {text!r} is not CCYYMMDDhhmmss")
    return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14]))


def _shift(local: datetime, offset: timedelta, text: str) -> datetime:
    try:
        return (local - offset).replace(tzinfo=timezone.utc)
    except OverflowError:   # year 1 or 9999 pushed out of range by the offset
        raise ValueError(f"time stamp {text!r} is out of range once converted to UTC") from None


def long_to_utc(stamp: DateTimeLong) -> datetime:
    return _shift(local_time(stamp.local), utc_offset(stamp.utc_offset), stamp.local)


def event_to_utc(stamp: DateTime, network: NetworkInfo | None) -> datetime:
    """An event time stamp in UTC, via the batch's UTC offset table; raises ValueError."""
    if stamp.utc_offset_code is None:
        raise ValueError("time stamp lacks utcTimeOffsetCode")
    offsets = network.utc_offsets if network is not None else {}
    text = offsets.get(stamp.utc_offset_code)
    if text is None:
        raise ValueError(f"utcTimeOffsetCode {stamp.utc_offset_code} is not in networkInfo.utcTimeOffsetInfo")
    return _shift(local_time(stamp.local), utc_offset(text), stamp.local)


@dataclass(frozen=True, slots=True)
class EventTotals:
    """What one event contributes to the audit totals (TD.57 AuditControlInfo derivations)."""

    charge: int
    tax: int
    discount: int
    charge_refund: int
    tax_refund: int
    discount_refund: int


def event_totals(event: CallEvent) -> EventTotals:
    charge = tax = discount = charge_refund = tax_refund = discount_refund = 0
    for info in event.all_charges():
        item_charge = info.total_charge
        item_tax = sum(t.tax_value or 0 for t in info.taxes)
        item_discount = info.discount or 0
        if info.refund:
            charge_refund += item_charge
            tax_refund += item_tax
            discount_refund += item_discount
        else:
            charge += item_charge
            tax += item_tax
            discount += item_discount
    # CAMEL invocation fees, their taxes and discounts count towards the totals too
    charge += event.camel_invocation_fee or 0
    tax += sum(t.tax_value or 0 for t in event.camel_taxes)
    discount += event.camel_discount or 0
    return EventTotals(charge, tax, discount, charge_refund, tax_refund, discount_refund)


def validate(doc: Tap3Document) -> list[Tap3Issue]:
    """Every issue of the file, fatal ones first in file order, then record-level ones."""
    if doc.kind == "transferBatch" and doc.transfer_batch is not None:
        return _transfer_batch(doc.transfer_batch)
    if doc.kind == "notification" and doc.notification is not None:
        n = doc.notification
        issues = _required("Notification", [
            ("sender", n.sender), ("recipient", n.recipient), ("fileSequenceNumber", n.file_sequence_number),
            ("fileAvailableTimeStamp", n.file_available), ("transferCutOffTimeStamp", n.transfer_cut_off),
            ("specificationVersionNumber", n.specification_version), ("releaseVersionNumber", n.release_version),
        ], 0)
        issues += _stamps("Notification", [("fileAvailableTimeStamp", n.file_available),
                                           ("transferCutOffTimeStamp", n.transfer_cut_off),
                                           ("fileCreationTimeStamp", n.file_creation)])
        if n.specification_version is not None and n.specification_version != 3:
            issues.append(Tap3Issue(FATAL, "unsupported-version", "Notification.specificationVersionNumber",
                                    f"TAP specification version {n.specification_version}; only version 3 is supported", 0))
        return issues
    if doc.kind == "returnBatch" and doc.return_batch is not None:
        rb = doc.return_batch
        issues = []
        if rb.control is None:
            issues.append(Tap3Issue(FATAL, "missing-field", "ReturnBatch.rapBatchControlInfo",
                                    "ReturnBatch lacks its mandatory rapBatchControlInfo", 0))
        else:
            c = rb.control
            issues += _required("ReturnBatch.rapBatchControlInfo", [
                ("sender", c.sender), ("recipient", c.recipient), ("rapFileSequenceNumber", c.rap_file_sequence_number),
                ("rapFileCreationTimeStamp", c.rap_file_creation), ("rapFileAvailableTimeStamp", c.rap_file_available),
            ], 0)
        if rb.return_details is None:
            issues.append(Tap3Issue(FATAL, "missing-field", "ReturnBatch.returnDetails",
                                    "ReturnBatch lacks its mandatory returnDetails (ReturnDetailList)", 0))
        if not rb.audit_present:
            issues.append(Tap3Issue(FATAL, "missing-field", "ReturnBatch.rapAuditControlInfo",
                                    "ReturnBatch lacks its mandatory rapAuditControlInfo", 0))
        return issues
    if doc.kind == "acknowledgement" and doc.acknowledgement is not None:
        a = doc.acknowledgement
        return _required("Acknowledgement", [
            ("sender", a.sender), ("recipient", a.recipient), ("rapFileSequenceNumber", a.rap_file_sequence_number),
            ("ackFileCreationTimeStamp", a.ack_file_creation), ("ackFileAvailableTimeStamp", a.ack_file_available),
        ], 0)
    return [Tap3Issue(FATAL, "not-tap", "file", f"unsupported document kind {doc.kind!r}", 0)]


def _required(path: str, items: list[tuple[str, object]], offset: int) -> list[Tap3Issue]:
    return [
        Tap3Issue(FATAL, "missing-field", f"{path}.{name}", f"mandatory {name} is missing", offset)
        for name, value in items
        if value is None or value == ""
    ]


def _stamps(path: str, items: list[tuple[str, DateTimeLong | None]]) -> list[Tap3Issue]:
    out = []
    for name, stamp in items:
        if stamp is None:
            continue
        try:
            long_to_utc(stamp)
        except ValueError as exc:
            out.append(Tap3Issue(FATAL, "bad-timestamp", f"{path}.{name}", str(exc), 0))
    return out


def _transfer_batch(batch: TransferBatch) -> list[Tap3Issue]:
    issues: list[Tap3Issue] = []
    bc = batch.batch_control
    path = "TransferBatch.batchControlInfo"
    if bc is None:
        issues.append(Tap3Issue(FATAL, "missing-field", path, "mandatory batchControlInfo is missing", 0))
    else:
        issues += _required(path, [
            ("sender", bc.sender), ("recipient", bc.recipient), ("fileSequenceNumber", bc.file_sequence_number),
            ("transferCutOffTimeStamp", bc.transfer_cut_off), ("fileAvailableTimeStamp", bc.file_available),
            ("specificationVersionNumber", bc.specification_version), ("releaseVersionNumber", bc.release_version),
        ], 0)
        issues += _stamps(path, [("fileCreationTimeStamp", bc.file_creation), ("transferCutOffTimeStamp", bc.transfer_cut_off),
                                 ("fileAvailableTimeStamp", bc.file_available)])
        if bc.specification_version is not None and bc.specification_version != 3:
            issues.append(Tap3Issue(FATAL, "unsupported-version", path + ".specificationVersionNumber",
                                    f"TAP specification version {bc.specification_version}; only version 3 is supported", 0))
        elif bc.release_version is not None and bc.release_version not in SUPPORTED_RELEASES:
            issues.append(Tap3Issue(FATAL, "unsupported-version", path + ".releaseVersionNumber",
                                    f"TAP release 3.{bc.release_version} is not supported (3.10 to 3.12 are)", 0))
        elif bc.release_version is not None and bc.release_version != 12:
            issues.append(Tap3Issue(WARNING, "older-release", path + ".releaseVersionNumber",
                                    f"TAP 3.{bc.release_version} file decoded with the 3.12 grammar", 0))
        if bc.file_type_indicator == "T":
            issues.append(Tap3Issue(WARNING, "test-data", path + ".fileTypeIndicator",
                                    "the sender marks this file as test data", 0))

    acc = batch.accounting
    any_charge = any(ev.all_charges() or ev.camel_invocation_fee for ev in batch.events)
    if acc is None:
        if any_charge:
            issues.append(Tap3Issue(FATAL, "missing-field", "TransferBatch.accountingInfo",
                                    "accountingInfo is mandatory when call events carry charges", 0))
    else:
        issues += _accounting(acc)
    if batch.network is None:
        issues.append(Tap3Issue(FATAL, "missing-field", "TransferBatch.networkInfo", "mandatory networkInfo is missing", 0))
    elif not batch.network.utc_offsets:
        issues.append(Tap3Issue(FATAL, "missing-field", "TransferBatch.networkInfo.utcTimeOffsetInfo",
                                "mandatory utcTimeOffsetInfo is missing", 0))
    if not batch.has_event_list:
        issues.append(Tap3Issue(FATAL, "missing-field", "TransferBatch.callEventDetails",
                                "a TransferBatch needs callEventDetails (an empty batch is sent as a Notification)", 0))

    record_issues: list[Tap3Issue] = []
    stamps: list[datetime] = []
    totals = [0, 0, 0, 0, 0, 0]
    for event in batch.events:
        record_issues += check_event(event, batch.network, acc)
        if event.start is not None:
            try:
                stamps.append(event_to_utc(event.start, batch.network))
            except ValueError:
                pass  # already a record issue; the audit compares what can be read
        t = event_totals(event)
        totals[0] += t.charge
        totals[1] += t.tax
        totals[2] += t.discount
        totals[3] += t.charge_refund
        totals[4] += t.tax_refund
        totals[5] += t.discount_refund
    issues += _audit(batch, totals, stamps)
    return issues + record_issues


def _accounting(acc: AccountingInfo) -> list[Tap3Issue]:
    path = "TransferBatch.accountingInfo"
    out = _required(path, [("localCurrency", acc.local_currency), ("tapDecimalPlaces", acc.tap_decimal_places)], 0)
    if acc.tap_decimal_places is not None and not 0 <= acc.tap_decimal_places <= MAX_TAP_DECIMAL_PLACES:
        out.append(Tap3Issue(FATAL, "bad-value", path + ".tapDecimalPlaces",
                             f"tapDecimalPlaces {acc.tap_decimal_places} is outside 0..{MAX_TAP_DECIMAL_PLACES}", 0))
    codes = [c.exchange_rate_code for c in acc.currency_conversions]
    if len(codes) != len(set(codes)):
        out.append(Tap3Issue(FATAL, "duplicate-code", path + ".currencyConversionInfo", "an exchangeRateCode appears twice", 0))
    for conv in acc.currency_conversions:
        if conv.exchange_rate <= 0 or conv.decimal_places < 0:
            out.append(Tap3Issue(FATAL, "bad-value", path + ".currencyConversionInfo",
                                 f"exchange rate code {conv.exchange_rate_code} has rate {conv.exchange_rate} "
                                 f"with {conv.decimal_places} decimal places", 0))
    return out


def check_event(event: CallEvent, network: NetworkInfo | None, acc: AccountingInfo | None,
                rates_known: bool = True) -> list[Tap3Issue]:
    """Record-level issues of one call event (decoding problems and impossible values).

    ``rates_known``: the exchange rate codes can be checked against ``acc`` (not for an event a RAP file returns)."""
    out = [Tap3Issue(RECORD, code, f"callEventDetails[{event.index}].{field}", message, offset, event.index)
           for code, field, message, offset in event.problems]
    where = f"callEventDetails[{event.index}]"

    def add(code: str, field: str, message: str) -> None:
        out.append(Tap3Issue(RECORD, code, f"{where}.{field}", message, event.offset, event.index))

    if event.start is not None:
        try:
            event_to_utc(event.start, network)
        except ValueError as exc:
            code = "unknown-utc-offset-code" if "utcTimeOffsetInfo" in str(exc) else "bad-timestamp"
            add(code, "callEventStartTimeStamp", str(exc))
    if event.duration is not None and event.duration < 0:
        add("negative-duration", "totalCallEventDuration", f"negative duration {event.duration}")
    if event.volume_incoming is not None and event.volume_incoming < 0:
        add("negative-volume", "dataVolumeIncoming", f"negative data volume {event.volume_incoming}")
    if event.volume_outgoing is not None and event.volume_outgoing < 0:
        add("negative-volume", "dataVolumeOutgoing", f"negative data volume {event.volume_outgoing}")
    rate_codes = {c.exchange_rate_code for c in acc.currency_conversions} if acc is not None else set()
    for info in event.all_charges():
        for detail in info.details:
            if detail.charge is not None and detail.charge < 0:
                add("negative-amount", "charge", f"negative charge {detail.charge} (AbsoluteAmount must be >= 0)")
        for tax in info.taxes:
            if tax.tax_value is not None and tax.tax_value < 0:
                add("negative-amount", "taxValue", f"negative tax value {tax.tax_value}")
        if info.discount is not None and info.discount < 0:
            add("negative-amount", "discount", f"negative discount {info.discount}")
        if rates_known and info.exchange_rate_code is not None and info.exchange_rate_code not in rate_codes:
            add("unknown-exchange-rate-code", "exchangeRateCode",
                f"exchangeRateCode {info.exchange_rate_code} is not in accountingInfo.currencyConversionInfo")
    if event.camel_invocation_fee is not None and event.camel_invocation_fee < 0:
        add("negative-amount", "camelInvocationFee", f"negative CAMEL invocation fee {event.camel_invocation_fee}")
    if event.kind is EventKind.UNKNOWN and not event.problems:
        add("unknown-event-type", "callEventDetail", "unknown call event type")
    return out


def _audit(batch: TransferBatch, totals: list[int], stamps: list[datetime]) -> list[Tap3Issue]:
    path = "TransferBatch.auditControlInfo"
    audit = batch.audit
    if audit is None:
        return [Tap3Issue(FATAL, "missing-field", path, "mandatory auditControlInfo is missing", 0)]
    at = audit.offset
    out = _required(path, [
        ("totalCharge", audit.total_charge), ("totalTaxValue", audit.total_tax_value),
        ("totalDiscountValue", audit.total_discount_value), ("callEventDetailsCount", audit.call_event_details_count),
    ], at)

    def compare(name: str, stated: int | None, computed: int, what: str) -> None:
        if stated is not None and stated != computed:
            out.append(Tap3Issue(FATAL, "audit-mismatch", f"{path}.{name}",
                                 f"{name} is {stated} but the call events {what} {computed}", at))

    compare("callEventDetailsCount", audit.call_event_details_count, len(batch.events), "number")
    compare("totalCharge", audit.total_charge, totals[0], "charges (charge type 00, CAMEL fees) sum to")
    compare("totalTaxValue", audit.total_tax_value, totals[1], "tax values sum to")
    compare("totalDiscountValue", audit.total_discount_value, totals[2], "discounts sum to")
    compare("totalChargeRefund", audit.total_charge_refund, totals[3], "refunded charges sum to")
    compare("totalTaxRefund", audit.total_tax_refund, totals[4], "refunded taxes sum to")
    compare("totalDiscountRefund", audit.total_discount_refund, totals[5], "refunded discounts sum to")
    if audit.total_charge_refund is None and totals[3]:
        out.append(Tap3Issue(FATAL, "missing-field", f"{path}.totalChargeRefund",
                             f"refunds of {totals[3]} are present but totalChargeRefund is missing", at))

    for name, stamp, pick in (("earliestCallTimeStamp", audit.earliest_call, min),
                              ("latestCallTimeStamp", audit.latest_call, max)):
        if stamp is None:
            if batch.events:
                out.append(Tap3Issue(FATAL, "missing-field", f"{path}.{name}",
                                     f"{name} is required when the batch has call events", at))
            continue
        try:
            stated = long_to_utc(stamp)
        except ValueError as exc:
            out.append(Tap3Issue(FATAL, "bad-timestamp", f"{path}.{name}", str(exc), at))
            continue
        if stamps:
            actual = pick(stamps)
            if stated != actual:
                out.append(Tap3Issue(FATAL, "audit-mismatch", f"{path}.{name}",
                                     f"{name} is {stamp.local}{stamp.utc_offset} ({_iso(stated)}) but the "
                                     f"{'earliest' if pick is min else 'latest'} call event starts at {_iso(actual)}", at))
    return out


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def fatal_issues(issues: list[Tap3Issue]) -> list[Tap3Issue]:
    return [i for i in issues if i.severity == FATAL]
