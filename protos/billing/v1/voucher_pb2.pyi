import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from billing.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VoucherState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOUCHER_STATE_UNSPECIFIED: _ClassVar[VoucherState]
    VOUCHER_STATE_GENERATED: _ClassVar[VoucherState]
    VOUCHER_STATE_ACTIVE: _ClassVar[VoucherState]
    VOUCHER_STATE_RESERVED: _ClassVar[VoucherState]
    VOUCHER_STATE_PENDING: _ClassVar[VoucherState]
    VOUCHER_STATE_USED: _ClassVar[VoucherState]
    VOUCHER_STATE_BLOCKED: _ClassVar[VoucherState]
    VOUCHER_STATE_EXPIRED: _ClassVar[VoucherState]
    VOUCHER_STATE_DAMAGED: _ClassVar[VoucherState]
    VOUCHER_STATE_STOLEN: _ClassVar[VoucherState]
    VOUCHER_STATE_PURGED: _ClassVar[VoucherState]

class BatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATE_UNSPECIFIED: _ClassVar[BatchState]
    BATCH_STATE_GENERATED: _ClassVar[BatchState]
    BATCH_STATE_ACTIVE: _ClassVar[BatchState]
    BATCH_STATE_BLOCKED: _ClassVar[BatchState]
    BATCH_STATE_EXPIRED: _ClassVar[BatchState]
    BATCH_STATE_PURGED: _ClassVar[BatchState]
    BATCH_STATE_EXHAUSTED: _ClassVar[BatchState]

class VoucherEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOUCHER_EVENT_UNSPECIFIED: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_ACTIVATE: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_BLOCK: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_UNBLOCK: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_MARK_DAMAGED: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_MARK_STOLEN: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_EXPIRE: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_PURGE: _ClassVar[VoucherEvent]
    VOUCHER_EVENT_RECOVER: _ClassVar[VoucherEvent]

class BatchEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_EVENT_UNSPECIFIED: _ClassVar[BatchEvent]
    BATCH_EVENT_ACTIVATE: _ClassVar[BatchEvent]
    BATCH_EVENT_BLOCK: _ClassVar[BatchEvent]
    BATCH_EVENT_UNBLOCK: _ClassVar[BatchEvent]
    BATCH_EVENT_EXPIRE: _ClassVar[BatchEvent]
    BATCH_EVENT_PURGE: _ClassVar[BatchEvent]

class ReservationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_STATUS_UNSPECIFIED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_RESERVED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_COMMITTED: _ClassVar[ReservationStatus]
    RESERVATION_STATUS_RELEASED: _ClassVar[ReservationStatus]
VOUCHER_STATE_UNSPECIFIED: VoucherState
VOUCHER_STATE_GENERATED: VoucherState
VOUCHER_STATE_ACTIVE: VoucherState
VOUCHER_STATE_RESERVED: VoucherState
VOUCHER_STATE_PENDING: VoucherState
VOUCHER_STATE_USED: VoucherState
VOUCHER_STATE_BLOCKED: VoucherState
VOUCHER_STATE_EXPIRED: VoucherState
VOUCHER_STATE_DAMAGED: VoucherState
VOUCHER_STATE_STOLEN: VoucherState
VOUCHER_STATE_PURGED: VoucherState
BATCH_STATE_UNSPECIFIED: BatchState
BATCH_STATE_GENERATED: BatchState
BATCH_STATE_ACTIVE: BatchState
BATCH_STATE_BLOCKED: BatchState
BATCH_STATE_EXPIRED: BatchState
BATCH_STATE_PURGED: BatchState
BATCH_STATE_EXHAUSTED: BatchState
VOUCHER_EVENT_UNSPECIFIED: VoucherEvent
VOUCHER_EVENT_ACTIVATE: VoucherEvent
VOUCHER_EVENT_BLOCK: VoucherEvent
VOUCHER_EVENT_UNBLOCK: VoucherEvent
VOUCHER_EVENT_MARK_DAMAGED: VoucherEvent
VOUCHER_EVENT_MARK_STOLEN: VoucherEvent
VOUCHER_EVENT_EXPIRE: VoucherEvent
VOUCHER_EVENT_PURGE: VoucherEvent
VOUCHER_EVENT_RECOVER: VoucherEvent
BATCH_EVENT_UNSPECIFIED: BatchEvent
BATCH_EVENT_ACTIVATE: BatchEvent
BATCH_EVENT_BLOCK: BatchEvent
BATCH_EVENT_UNBLOCK: BatchEvent
BATCH_EVENT_EXPIRE: BatchEvent
BATCH_EVENT_PURGE: BatchEvent
RESERVATION_STATUS_UNSPECIFIED: ReservationStatus
RESERVATION_STATUS_RESERVED: ReservationStatus
RESERVATION_STATUS_COMMITTED: ReservationStatus
RESERVATION_STATUS_RELEASED: ReservationStatus

class VoucherBatch(_message.Message):
    __slots__ = ("batch_id", "profile_id", "tenant_id", "dealer", "face_value", "count", "first_serial", "last_serial", "serial_prefix", "serial_digits", "pin_length", "create_time", "expire_time", "recharge_extension_days", "state", "pin_cipher", "key_wrap", "master_key_version", "lookup_key_version", "pins_shredded", "other_owners_state")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEALER_FIELD_NUMBER: _ClassVar[int]
    FACE_VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SERIAL_DIGITS_FIELD_NUMBER: _ClassVar[int]
    PIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    RECHARGE_EXTENSION_DAYS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PIN_CIPHER_FIELD_NUMBER: _ClassVar[int]
    KEY_WRAP_FIELD_NUMBER: _ClassVar[int]
    MASTER_KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PINS_SHREDDED_FIELD_NUMBER: _ClassVar[int]
    OTHER_OWNERS_STATE_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    profile_id: str
    tenant_id: str
    dealer: str
    face_value: _common_pb2.Money
    count: int
    first_serial: int
    last_serial: int
    serial_prefix: str
    serial_digits: int
    pin_length: int
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    recharge_extension_days: int
    state: BatchState
    pin_cipher: str
    key_wrap: str
    master_key_version: int
    lookup_key_version: int
    pins_shredded: bool
    other_owners_state: BatchState
    def __init__(self, batch_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., dealer: _Optional[str] = ..., face_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., count: _Optional[int] = ..., first_serial: _Optional[int] = ..., last_serial: _Optional[int] = ..., serial_prefix: _Optional[str] = ..., serial_digits: _Optional[int] = ..., pin_length: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recharge_extension_days: _Optional[int] = ..., state: _Optional[_Union[BatchState, str]] = ..., pin_cipher: _Optional[str] = ..., key_wrap: _Optional[str] = ..., master_key_version: _Optional[int] = ..., lookup_key_version: _Optional[int] = ..., pins_shredded: _Optional[bool] = ..., other_owners_state: _Optional[_Union[BatchState, str]] = ...) -> None: ...

class Voucher(_message.Message):
    __slots__ = ("serial", "serial_text", "batch_id", "tenant_id", "dealer", "state", "face_value", "expire_time", "pin", "redeemed_by", "redeem_time", "batch_state")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    SERIAL_TEXT_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEALER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FACE_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_BY_FIELD_NUMBER: _ClassVar[int]
    REDEEM_TIME_FIELD_NUMBER: _ClassVar[int]
    BATCH_STATE_FIELD_NUMBER: _ClassVar[int]
    serial: int
    serial_text: str
    batch_id: str
    tenant_id: str
    dealer: str
    state: VoucherState
    face_value: _common_pb2.Money
    expire_time: _timestamp_pb2.Timestamp
    pin: str
    redeemed_by: str
    redeem_time: _timestamp_pb2.Timestamp
    batch_state: BatchState
    def __init__(self, serial: _Optional[int] = ..., serial_text: _Optional[str] = ..., batch_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., dealer: _Optional[str] = ..., state: _Optional[_Union[VoucherState, str]] = ..., face_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pin: _Optional[str] = ..., redeemed_by: _Optional[str] = ..., redeem_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., batch_state: _Optional[_Union[BatchState, str]] = ...) -> None: ...

class GenerateBatchRequest(_message.Message):
    __slots__ = ("profile_id", "count", "face_value", "currency", "expire_time", "tenant_id", "dealer")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FACE_VALUE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEALER_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    count: int
    face_value: str
    currency: str
    expire_time: _timestamp_pb2.Timestamp
    tenant_id: str
    dealer: str
    def __init__(self, profile_id: _Optional[str] = ..., count: _Optional[int] = ..., face_value: _Optional[str] = ..., currency: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ..., dealer: _Optional[str] = ...) -> None: ...

class GenerateBatchResponse(_message.Message):
    __slots__ = ("progress", "batch")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    batch: VoucherBatch
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., batch: _Optional[_Union[VoucherBatch, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("done", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class GetBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: VoucherBatch
    def __init__(self, batch: _Optional[_Union[VoucherBatch, _Mapping]] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("batches", "next_page_token")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[VoucherBatch]
    next_page_token: str
    def __init__(self, batches: _Optional[_Iterable[_Union[VoucherBatch, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetVoucherRequest(_message.Message):
    __slots__ = ("serial",)
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    serial: int
    def __init__(self, serial: _Optional[int] = ...) -> None: ...

class GetVoucherResponse(_message.Message):
    __slots__ = ("voucher",)
    VOUCHER_FIELD_NUMBER: _ClassVar[int]
    voucher: Voucher
    def __init__(self, voucher: _Optional[_Union[Voucher, _Mapping]] = ...) -> None: ...

class VoucherSelection(_message.Message):
    __slots__ = ("batch_id", "first_serial", "last_serial")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    LAST_SERIAL_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    first_serial: int
    last_serial: int
    def __init__(self, batch_id: _Optional[str] = ..., first_serial: _Optional[int] = ..., last_serial: _Optional[int] = ...) -> None: ...

class StreamVouchersRequest(_message.Message):
    __slots__ = ("selection", "chunk_size", "reveal", "states")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    selection: VoucherSelection
    chunk_size: int
    reveal: bool
    states: _containers.RepeatedScalarFieldContainer[VoucherState]
    def __init__(self, selection: _Optional[_Union[VoucherSelection, _Mapping]] = ..., chunk_size: _Optional[int] = ..., reveal: _Optional[bool] = ..., states: _Optional[_Iterable[_Union[VoucherState, str]]] = ...) -> None: ...

class StreamVouchersResponse(_message.Message):
    __slots__ = ("vouchers",)
    VOUCHERS_FIELD_NUMBER: _ClassVar[int]
    vouchers: _containers.RepeatedCompositeFieldContainer[Voucher]
    def __init__(self, vouchers: _Optional[_Iterable[_Union[Voucher, _Mapping]]] = ...) -> None: ...

class ExportVouchersRequest(_message.Message):
    __slots__ = ("selection", "recipient_public_key", "armor", "request_id")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ARMOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    selection: VoucherSelection
    recipient_public_key: bytes
    armor: bool
    request_id: str
    def __init__(self, selection: _Optional[_Union[VoucherSelection, _Mapping]] = ..., recipient_public_key: _Optional[bytes] = ..., armor: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExportVouchersResponse(_message.Message):
    __slots__ = ("receipt", "data")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    receipt: ExportReceipt
    data: bytes
    def __init__(self, receipt: _Optional[_Union[ExportReceipt, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ExportReceipt(_message.Message):
    __slots__ = ("sha256", "size", "count", "totals", "batch_ids", "create_time", "recipient_fingerprint", "signer_fingerprint", "left_out")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    LEFT_OUT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size: int
    count: int
    totals: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    recipient_fingerprint: str
    signer_fingerprint: str
    left_out: _containers.RepeatedCompositeFieldContainer[RefusedGroup]
    def __init__(self, sha256: _Optional[str] = ..., size: _Optional[int] = ..., count: _Optional[int] = ..., totals: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., batch_ids: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recipient_fingerprint: _Optional[str] = ..., signer_fingerprint: _Optional[str] = ..., left_out: _Optional[_Iterable[_Union[RefusedGroup, _Mapping]]] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("msisdn", "pin", "request_id")
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    msisdn: str
    pin: str
    request_id: str
    def __init__(self, msisdn: _Optional[str] = ..., pin: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("serial", "batch_id", "credited", "balance", "valid_until", "redeem_time", "transaction_id", "request_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITED_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REDEEM_TIME_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    serial: int
    batch_id: str
    credited: _common_pb2.Money
    balance: _common_pb2.Money
    valid_until: _timestamp_pb2.Timestamp
    redeem_time: _timestamp_pb2.Timestamp
    transaction_id: str
    request_id: str
    def __init__(self, serial: _Optional[int] = ..., batch_id: _Optional[str] = ..., credited: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., balance: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., redeem_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., transaction_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChangeVouchersRequest(_message.Message):
    __slots__ = ("selection", "event", "reason", "request_id")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    selection: VoucherSelection
    event: VoucherEvent
    reason: str
    request_id: str
    def __init__(self, selection: _Optional[_Union[VoucherSelection, _Mapping]] = ..., event: _Optional[_Union[VoucherEvent, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("from_state", "to_state", "count")
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    from_state: VoucherState
    to_state: VoucherState
    count: int
    def __init__(self, from_state: _Optional[_Union[VoucherState, str]] = ..., to_state: _Optional[_Union[VoucherState, str]] = ..., count: _Optional[int] = ...) -> None: ...

class RefusedGroup(_message.Message):
    __slots__ = ("state", "count", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: VoucherState
    count: int
    reason: str
    def __init__(self, state: _Optional[_Union[VoucherState, str]] = ..., count: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ChangeVouchersResponse(_message.Message):
    __slots__ = ("changed", "refused", "changed_count", "refused_count")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REFUSED_COUNT_FIELD_NUMBER: _ClassVar[int]
    changed: _containers.RepeatedCompositeFieldContainer[StateChange]
    refused: _containers.RepeatedCompositeFieldContainer[RefusedGroup]
    changed_count: int
    refused_count: int
    def __init__(self, changed: _Optional[_Iterable[_Union[StateChange, _Mapping]]] = ..., refused: _Optional[_Iterable[_Union[RefusedGroup, _Mapping]]] = ..., changed_count: _Optional[int] = ..., refused_count: _Optional[int] = ...) -> None: ...

class ChangeBatchRequest(_message.Message):
    __slots__ = ("batch_id", "event", "reason")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    event: BatchEvent
    reason: str
    def __init__(self, batch_id: _Optional[str] = ..., event: _Optional[_Union[BatchEvent, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ChangeBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: VoucherBatch
    def __init__(self, batch: _Optional[_Union[VoucherBatch, _Mapping]] = ...) -> None: ...

class AmendVoucherRequest(_message.Message):
    __slots__ = ("serial", "expire_time", "face_value", "tenant_id", "dealer", "set_dealer", "request_id")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    FACE_VALUE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    DEALER_FIELD_NUMBER: _ClassVar[int]
    SET_DEALER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    serial: int
    expire_time: _timestamp_pb2.Timestamp
    face_value: str
    tenant_id: str
    dealer: str
    set_dealer: bool
    request_id: str
    def __init__(self, serial: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., face_value: _Optional[str] = ..., tenant_id: _Optional[str] = ..., dealer: _Optional[str] = ..., set_dealer: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class AmendVoucherResponse(_message.Message):
    __slots__ = ("voucher",)
    VOUCHER_FIELD_NUMBER: _ClassVar[int]
    voucher: Voucher
    def __init__(self, voucher: _Optional[_Union[Voucher, _Mapping]] = ...) -> None: ...

class ExpireDueVouchersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExpireDueVouchersResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ChangeVouchersResponse
    def __init__(self, result: _Optional[_Union[ChangeVouchersResponse, _Mapping]] = ...) -> None: ...

class RotateKeysRequest(_message.Message):
    __slots__ = ("add_master_key",)
    ADD_MASTER_KEY_FIELD_NUMBER: _ClassVar[int]
    add_master_key: bool
    def __init__(self, add_master_key: _Optional[bool] = ...) -> None: ...

class RotateKeysResponse(_message.Message):
    __slots__ = ("batches_rewrapped", "master_key_version")
    BATCHES_REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    MASTER_KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    batches_rewrapped: int
    master_key_version: int
    def __init__(self, batches_rewrapped: _Optional[int] = ..., master_key_version: _Optional[int] = ...) -> None: ...

class ClearRechargeBarRequest(_message.Message):
    __slots__ = ("msisdn", "reason")
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    msisdn: str
    reason: str
    def __init__(self, msisdn: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ClearRechargeBarResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "msisdn", "serial", "batch_id", "tenant_id", "face_value", "reserve_time", "status", "settle_time")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_VALUE_FIELD_NUMBER: _ClassVar[int]
    RESERVE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SETTLE_TIME_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    msisdn: str
    serial: int
    batch_id: str
    tenant_id: str
    face_value: _common_pb2.Money
    reserve_time: _timestamp_pb2.Timestamp
    status: ReservationStatus
    settle_time: _timestamp_pb2.Timestamp
    def __init__(self, reservation_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., serial: _Optional[int] = ..., batch_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., face_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., reserve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[ReservationStatus, str]] = ..., settle_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReserveVoucherRequest(_message.Message):
    __slots__ = ("msisdn", "pin", "request_id")
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    PIN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    msisdn: str
    pin: str
    request_id: str
    def __init__(self, msisdn: _Optional[str] = ..., pin: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReserveVoucherResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("reservation_id", "tenant_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    tenant_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class CommitReservationResponse(_message.Message):
    __slots__ = ("redemption", "reservation")
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    redemption: RedeemResponse
    reservation: Reservation
    def __init__(self, redemption: _Optional[_Union[RedeemResponse, _Mapping]] = ..., reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("reservation_id", "reason", "tenant_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    reason: str
    tenant_id: str
    def __init__(self, reservation_id: _Optional[str] = ..., reason: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class ReleaseReservationResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ...) -> None: ...

class RecoverReservationsRequest(_message.Message):
    __slots__ = ("older_than",)
    OLDER_THAN_FIELD_NUMBER: _ClassVar[int]
    older_than: _duration_pb2.Duration
    def __init__(self, older_than: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RecoverReservationsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ChangeVouchersResponse
    def __init__(self, result: _Optional[_Union[ChangeVouchersResponse, _Mapping]] = ...) -> None: ...
