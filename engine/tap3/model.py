"""The decoded TAP 3.12 / RAP documents as typed values.

Names follow GSMA TD.57 (TAP) and TD.32 (RAP) so an operator can find every
field in the specification.  The per-event value classes (DateTime, ChargeDetail,
ChargeInformation, TaxInformation, ServiceUsed) are not frozen: building a frozen
dataclass costs about 2.5x more, and a 100k-event batch builds half a million of
them.  Treat them as read-only all the same.  Amounts stay as the integers of the file; their
scale is ``AccountingInfo.tap_decimal_places`` (TD.57 AbsoluteAmount).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class EventKind(str, Enum):
    """The CallEventDetail alternatives of TAP 3.12, with their APPLICATION tags."""

    MOBILE_ORIGINATED_CALL = "mobileOriginatedCall"    # [APPLICATION 9]
    MOBILE_TERMINATED_CALL = "mobileTerminatedCall"    # [APPLICATION 10]
    SUPPL_SERVICE_EVENT = "supplServiceEvent"          # [APPLICATION 11]
    SERVICE_CENTRE_USAGE = "serviceCentreUsage"        # [APPLICATION 12]
    GPRS_CALL = "gprsCall"                             # [APPLICATION 14]
    CONTENT_TRANSACTION = "contentTransaction"         # [APPLICATION 17]
    LOCATION_SERVICE = "locationService"               # [APPLICATION 297]
    MESSAGING_EVENT = "messagingEvent"                 # [APPLICATION 433]
    MOBILE_SESSION = "mobileSession"                   # [APPLICATION 434]
    UNKNOWN = "unknown"                                # an alternative this decoder does not know


@dataclass(slots=True)
class DateTime:
    """TD.57 DateTime: local time plus a code into NetworkInfo's UTC offset table."""

    local: str            # CCYYMMDDhhmmss
    utc_offset_code: int | None


@dataclass(frozen=True, slots=True)
class DateTimeLong:
    """TD.57 DateTimeLong: local time with its UTC offset (e.g. ``+0200``) inline."""

    local: str
    utc_offset: str


@dataclass(slots=True)
class ChargeDetail:
    charge_type: str               # "00" is the total charge of the item
    charge: int | None
    chargeable_units: int | None = None
    charged_units: int | None = None


@dataclass(slots=True)
class TaxInformation:
    tax_code: int | None
    tax_value: int | None
    taxable_amount: int | None = None


@dataclass(slots=True)
class ChargeInformation:
    charged_item: str
    exchange_rate_code: int | None
    details: tuple[ChargeDetail, ...]
    taxes: tuple[TaxInformation, ...] = ()
    discount_code: int | None = None
    discount: int | None = None
    refund: bool = False           # ContentServiceUsed with chargeRefundIndicator

    @property
    def total_charge(self) -> int:
        return sum(d.charge or 0 for d in self.details if d.charge_type == "00")


@dataclass(slots=True)
class ServiceUsed:
    """A BasicServiceUsed: teleservice or bearer service code and its charges."""

    tele_service_code: str = ""
    bearer_service_code: str = ""
    charging_time: DateTime | None = None
    charges: tuple[ChargeInformation, ...] = ()


@dataclass(slots=True)
class CallEvent:
    """One CallEventDetail.  Fields not carried by ``kind`` stay empty.

    ``problems`` holds record-level defects found while decoding (a missing
    mandatory item, a value of the wrong form); such a record is rejected alone.
    ``offset``/``end`` delimit the original bytes of the record in the file.
    """

    kind: EventKind
    index: int
    offset: int
    end: int
    imsi: str = ""
    msisdn: str = ""
    start: DateTime | None = None
    duration: int | None = None
    called_number: str = ""
    dialled_digits: str = ""
    calling_number: str = ""
    destination_network: str = ""
    originating_network: str = ""
    rec_entity_codes: tuple[int, ...] = ()
    services: tuple[ServiceUsed, ...] = ()
    charges: tuple[ChargeInformation, ...] = ()   # charges not under a BasicServiceUsed
    camel_invocation_fee: int | None = None
    camel_taxes: tuple[TaxInformation, ...] = ()
    camel_discount: int | None = None
    access_point_name_ni: str = ""
    access_point_name_oi: str = ""
    charging_id: int | None = None
    partial_type: str = ""
    volume_incoming: int | None = None
    volume_outgoing: int | None = None
    suppl_service_code: str = ""
    suppl_service_action: int | None = None
    event_reference: str = ""
    service_code: int | None = None            # messagingEventService / mobileSessionService
    problems: list[tuple[str, str, str, int]] = field(default_factory=list)  # (code, field, message, offset)

    def all_charges(self) -> list[ChargeInformation]:
        out = list(self.charges)
        for used in self.services:
            out.extend(used.charges)
        return out


@dataclass(frozen=True, slots=True)
class RecEntityInformation:
    code: int
    type: int | None
    id: str


@dataclass(frozen=True, slots=True)
class CurrencyConversion:
    exchange_rate_code: int
    decimal_places: int
    exchange_rate: int   # local currency per TAP currency unit, scaled by 10**decimal_places


@dataclass(frozen=True, slots=True)
class BatchControlInfo:
    sender: str
    recipient: str
    file_sequence_number: str
    file_creation: DateTimeLong | None
    transfer_cut_off: DateTimeLong | None
    file_available: DateTimeLong | None
    specification_version: int | None
    release_version: int | None
    file_type_indicator: str = ""     # "T" marks test data
    rap_file_sequence_number: str = ""
    operator_spec_information: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountingInfo:
    local_currency: str
    tap_currency: str                 # empty: charges are in SDR (TD.57)
    tap_decimal_places: int | None
    currency_conversions: tuple[CurrencyConversion, ...] = ()
    taxation: tuple[tuple[int, str, str], ...] = ()      # (taxCode, taxType, taxRate)
    discounting: tuple[tuple[int, str], ...] = ()        # (discountCode, description of the value)

    @property
    def batch_currency(self) -> str:
        return self.tap_currency or "XDR"


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    utc_offsets: dict[int, str]
    rec_entities: tuple[RecEntityInformation, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditControlInfo:
    earliest_call: DateTimeLong | None
    latest_call: DateTimeLong | None
    total_charge: int | None
    total_tax_value: int | None
    total_discount_value: int | None
    call_event_details_count: int | None
    total_charge_refund: int | None = None
    total_tax_refund: int | None = None
    total_discount_refund: int | None = None
    operator_spec_information: tuple[str, ...] = ()
    offset: int = 0


@dataclass(slots=True)
class TransferBatch:
    batch_control: BatchControlInfo | None
    accounting: AccountingInfo | None
    network: NetworkInfo | None
    events: list[CallEvent]
    audit: AuditControlInfo | None
    has_event_list: bool = True


@dataclass(frozen=True, slots=True)
class Notification:
    """A TAP Notification: the sender has nothing to send for this sequence number."""

    sender: str
    recipient: str
    file_sequence_number: str
    file_creation: DateTimeLong | None
    file_available: DateTimeLong | None
    transfer_cut_off: DateTimeLong | None
    specification_version: int | None
    release_version: int | None
    file_type_indicator: str = ""
    rap_file_sequence_number: str = ""


@dataclass(frozen=True, slots=True)
class RapBatchControlInfo:
    sender: str
    recipient: str
    rap_file_sequence_number: str
    rap_file_creation: DateTimeLong | None
    rap_file_available: DateTimeLong | None
    tap_specification_version: int | None
    tap_release_version: int | None
    rap_specification_version: int | None
    rap_release_version: int | None
    file_type_indicator: str = ""
    tap_currency: str = ""              # of the returned charges; empty: SDR, as in TAP
    tap_decimal_places: int | None = None


@dataclass(frozen=True, slots=True)
class ReturnDetail:
    """One returned item of a RAP ReturnBatch (fatal/severe/missing/stop return).

    A severe return carries the returned call event (``event``, decoded as in a TransferBatch), the
    sequence number of the TAP file it came in, and the UTC offsets / recording entities that event's
    codes refer to, when the return carries them (``network``)."""

    kind: str
    offset: int
    size: int
    file_sequence_number: str = ""
    event: CallEvent | None = None
    network: NetworkInfo | None = None


@dataclass(frozen=True, slots=True)
class ReturnBatch:
    """TD.32 ReturnBatch: records or files the recipient sends back."""

    control: RapBatchControlInfo | None
    return_details: tuple[ReturnDetail, ...] | None   # None: the mandatory list is absent
    audit_present: bool
    audit_offset: int = 0


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """TD.32 Acknowledgement of a received RAP file."""

    sender: str
    recipient: str
    rap_file_sequence_number: str
    ack_file_creation: DateTimeLong | None
    ack_file_available: DateTimeLong | None


@dataclass(slots=True)
class Tap3Document:
    """A decoded file: exactly one of the bodies is set, as ``kind`` says."""

    kind: str                       # "transferBatch" | "notification" | "returnBatch" | "acknowledgement"
    size: int
    transfer_batch: TransferBatch | None = None
    notification: Notification | None = None
    return_batch: ReturnBatch | None = None
    acknowledgement: Acknowledgement | None = None
    skipped: list[tuple[str, int, int]] = field(default_factory=list)  # unknown elements: (path, tag, offset)
    data: bytes = b""               # the original file, for record rejects' raw bytes
