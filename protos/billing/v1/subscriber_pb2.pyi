import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from billing.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_TYPE_UNSPECIFIED: _ClassVar[PaymentType]
    PAYMENT_TYPE_POSTPAID: _ClassVar[PaymentType]
    PAYMENT_TYPE_PREPAID: _ClassVar[PaymentType]

class SubscriberStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIBER_STATUS_UNSPECIFIED: _ClassVar[SubscriberStatus]
    SUBSCRIBER_STATUS_PROVISIONED: _ClassVar[SubscriberStatus]
    SUBSCRIBER_STATUS_ACTIVE: _ClassVar[SubscriberStatus]
    SUBSCRIBER_STATUS_SUSPENDED: _ClassVar[SubscriberStatus]
    SUBSCRIBER_STATUS_DEACTIVATED: _ClassVar[SubscriberStatus]
PAYMENT_TYPE_UNSPECIFIED: PaymentType
PAYMENT_TYPE_POSTPAID: PaymentType
PAYMENT_TYPE_PREPAID: PaymentType
SUBSCRIBER_STATUS_UNSPECIFIED: SubscriberStatus
SUBSCRIBER_STATUS_PROVISIONED: SubscriberStatus
SUBSCRIBER_STATUS_ACTIVE: SubscriberStatus
SUBSCRIBER_STATUS_SUSPENDED: SubscriberStatus
SUBSCRIBER_STATUS_DEACTIVATED: SubscriberStatus

class Subscriber(_message.Message):
    __slots__ = ("subscriber_id", "tenant_id", "msisdn", "imsi", "billing_account", "payment_type", "status", "tariff_plan", "create_time", "update_time", "activate_time", "deactivate_time", "barring_flags", "credit_limit")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    IMSI_FIELD_NUMBER: _ClassVar[int]
    BILLING_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DEACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    BARRING_FLAGS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    tenant_id: str
    msisdn: str
    imsi: str
    billing_account: str
    payment_type: PaymentType
    status: SubscriberStatus
    tariff_plan: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    activate_time: _timestamp_pb2.Timestamp
    deactivate_time: _timestamp_pb2.Timestamp
    barring_flags: _containers.RepeatedScalarFieldContainer[str]
    credit_limit: _common_pb2.Money
    def __init__(self, subscriber_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., imsi: _Optional[str] = ..., billing_account: _Optional[str] = ..., payment_type: _Optional[_Union[PaymentType, str]] = ..., status: _Optional[_Union[SubscriberStatus, str]] = ..., tariff_plan: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., activate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deactivate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., barring_flags: _Optional[_Iterable[str]] = ..., credit_limit: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class ProvisionSubscriberRequest(_message.Message):
    __slots__ = ("tenant_id", "msisdn", "imsi", "billing_account", "payment_type", "tariff_plan")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    IMSI_FIELD_NUMBER: _ClassVar[int]
    BILLING_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    msisdn: str
    imsi: str
    billing_account: str
    payment_type: PaymentType
    tariff_plan: str
    def __init__(self, tenant_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., imsi: _Optional[str] = ..., billing_account: _Optional[str] = ..., payment_type: _Optional[_Union[PaymentType, str]] = ..., tariff_plan: _Optional[str] = ...) -> None: ...

class ProvisionSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class GetSubscriberRequest(_message.Message):
    __slots__ = ("subscriber_id", "msisdn")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    msisdn: str
    def __init__(self, subscriber_id: _Optional[str] = ..., msisdn: _Optional[str] = ...) -> None: ...

class GetSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class ListSubscribersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tenant_id", "status", "payment_type", "tariff_plan", "billing_account", "msisdn_prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    BILLING_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MSISDN_PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tenant_id: str
    status: SubscriberStatus
    payment_type: PaymentType
    tariff_plan: str
    billing_account: str
    msisdn_prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ..., status: _Optional[_Union[SubscriberStatus, str]] = ..., payment_type: _Optional[_Union[PaymentType, str]] = ..., tariff_plan: _Optional[str] = ..., billing_account: _Optional[str] = ..., msisdn_prefix: _Optional[str] = ...) -> None: ...

class ListSubscribersResponse(_message.Message):
    __slots__ = ("subscribers", "next_page_token")
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subscribers: _containers.RepeatedCompositeFieldContainer[Subscriber]
    next_page_token: str
    def __init__(self, subscribers: _Optional[_Iterable[_Union[Subscriber, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ActivateSubscriberRequest(_message.Message):
    __slots__ = ("subscriber_id",)
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    def __init__(self, subscriber_id: _Optional[str] = ...) -> None: ...

class ActivateSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class SuspendSubscriberRequest(_message.Message):
    __slots__ = ("subscriber_id", "reason")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    reason: str
    def __init__(self, subscriber_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SuspendSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class ReactivateSubscriberRequest(_message.Message):
    __slots__ = ("subscriber_id",)
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    def __init__(self, subscriber_id: _Optional[str] = ...) -> None: ...

class ReactivateSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class DeactivateSubscriberRequest(_message.Message):
    __slots__ = ("subscriber_id", "reason")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    reason: str
    def __init__(self, subscriber_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeactivateSubscriberResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class ChangeSubscriberPlanRequest(_message.Message):
    __slots__ = ("subscriber_id", "tariff_plan")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    tariff_plan: str
    def __init__(self, subscriber_id: _Optional[str] = ..., tariff_plan: _Optional[str] = ...) -> None: ...

class ChangeSubscriberPlanResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class SwapSubscriberSimRequest(_message.Message):
    __slots__ = ("subscriber_id", "imsi", "reason")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    IMSI_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    imsi: str
    reason: str
    def __init__(self, subscriber_id: _Optional[str] = ..., imsi: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SwapSubscriberSimResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class SetSubscriberBarringRequest(_message.Message):
    __slots__ = ("subscriber_id", "flag", "barred", "reason")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    BARRED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    flag: str
    barred: bool
    reason: str
    def __init__(self, subscriber_id: _Optional[str] = ..., flag: _Optional[str] = ..., barred: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SetSubscriberBarringResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...

class SetSubscriberCreditLimitRequest(_message.Message):
    __slots__ = ("subscriber_id", "credit_limit", "clear")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    credit_limit: _common_pb2.Money
    clear: bool
    def __init__(self, subscriber_id: _Optional[str] = ..., credit_limit: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., clear: _Optional[bool] = ...) -> None: ...

class SetSubscriberCreditLimitResponse(_message.Message):
    __slots__ = ("subscriber",)
    SUBSCRIBER_FIELD_NUMBER: _ClassVar[int]
    subscriber: Subscriber
    def __init__(self, subscriber: _Optional[_Union[Subscriber, _Mapping]] = ...) -> None: ...
