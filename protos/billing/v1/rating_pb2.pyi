import datetime

from billing.v1 import common_pb2 as _common_pb2
from billing.v1 import mediation_pb2 as _mediation_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RatingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATING_STATUS_UNSPECIFIED: _ClassVar[RatingStatus]
    RATING_STATUS_RATED: _ClassVar[RatingStatus]
    RATING_STATUS_UNRATED: _ClassVar[RatingStatus]
    RATING_STATUS_REJECTED: _ClassVar[RatingStatus]

class CreditAlertKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDIT_ALERT_KIND_UNSPECIFIED: _ClassVar[CreditAlertKind]
    CREDIT_ALERT_KIND_MESSAGE: _ClassVar[CreditAlertKind]
    CREDIT_ALERT_KIND_BAR_SERVICE: _ClassVar[CreditAlertKind]
    CREDIT_ALERT_KIND_NOTIFY_MVNO: _ClassVar[CreditAlertKind]
RATING_STATUS_UNSPECIFIED: RatingStatus
RATING_STATUS_RATED: RatingStatus
RATING_STATUS_UNRATED: RatingStatus
RATING_STATUS_REJECTED: RatingStatus
CREDIT_ALERT_KIND_UNSPECIFIED: CreditAlertKind
CREDIT_ALERT_KIND_MESSAGE: CreditAlertKind
CREDIT_ALERT_KIND_BAR_SERVICE: CreditAlertKind
CREDIT_ALERT_KIND_NOTIFY_MVNO: CreditAlertKind

class RatedSpan(_message.Message):
    __slots__ = ("start", "end", "band", "rate_id", "billed_units", "bundle_units", "charge")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    RATE_ID_FIELD_NUMBER: _ClassVar[int]
    BILLED_UNITS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_UNITS_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    band: str
    rate_id: str
    billed_units: int
    bundle_units: int
    charge: _common_pb2.Money
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., band: _Optional[str] = ..., rate_id: _Optional[str] = ..., billed_units: _Optional[int] = ..., bundle_units: _Optional[int] = ..., charge: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class BundleUse(_message.Message):
    __slots__ = ("bundle_id", "units")
    BUNDLE_ID_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    bundle_id: str
    units: int
    def __init__(self, bundle_id: _Optional[str] = ..., units: _Optional[int] = ...) -> None: ...

class DiscountLine(_message.Message):
    __slots__ = ("discount_id", "amount")
    DISCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    discount_id: str
    amount: _common_pb2.Money
    def __init__(self, discount_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class RatedCdr(_message.Message):
    __slots__ = ("cdr_id", "status", "reason", "charge", "gross", "tariff_plan", "plan_version", "plan_set_version", "destination", "zone", "units", "spans", "bundles", "discounts", "explanation", "flags")
    CDR_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    GROSS_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    PLAN_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAN_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    BUNDLES_FIELD_NUMBER: _ClassVar[int]
    DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    cdr_id: str
    status: RatingStatus
    reason: str
    charge: _common_pb2.Money
    gross: _common_pb2.Money
    tariff_plan: str
    plan_version: int
    plan_set_version: int
    destination: str
    zone: str
    units: int
    spans: _containers.RepeatedCompositeFieldContainer[RatedSpan]
    bundles: _containers.RepeatedCompositeFieldContainer[BundleUse]
    discounts: _containers.RepeatedCompositeFieldContainer[DiscountLine]
    explanation: str
    flags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cdr_id: _Optional[str] = ..., status: _Optional[_Union[RatingStatus, str]] = ..., reason: _Optional[str] = ..., charge: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., gross: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tariff_plan: _Optional[str] = ..., plan_version: _Optional[int] = ..., plan_set_version: _Optional[int] = ..., destination: _Optional[str] = ..., zone: _Optional[str] = ..., units: _Optional[int] = ..., spans: _Optional[_Iterable[_Union[RatedSpan, _Mapping]]] = ..., bundles: _Optional[_Iterable[_Union[BundleUse, _Mapping]]] = ..., discounts: _Optional[_Iterable[_Union[DiscountLine, _Mapping]]] = ..., explanation: _Optional[str] = ..., flags: _Optional[_Iterable[str]] = ...) -> None: ...

class RateOptions(_message.Message):
    __slots__ = ("tariff_plan", "use_bundle_counters", "explain")
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    USE_BUNDLE_COUNTERS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    tariff_plan: str
    use_bundle_counters: bool
    explain: bool
    def __init__(self, tariff_plan: _Optional[str] = ..., use_bundle_counters: _Optional[bool] = ..., explain: _Optional[bool] = ...) -> None: ...

class RateCdrRequest(_message.Message):
    __slots__ = ("cdr", "options")
    CDR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    cdr: _mediation_pb2.NormalisedCdr
    options: RateOptions
    def __init__(self, cdr: _Optional[_Union[_mediation_pb2.NormalisedCdr, _Mapping]] = ..., options: _Optional[_Union[RateOptions, _Mapping]] = ...) -> None: ...

class RateCdrResponse(_message.Message):
    __slots__ = ("rated",)
    RATED_FIELD_NUMBER: _ClassVar[int]
    rated: RatedCdr
    def __init__(self, rated: _Optional[_Union[RatedCdr, _Mapping]] = ...) -> None: ...

class RateCdrsRequest(_message.Message):
    __slots__ = ("cdrs", "options")
    CDRS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    cdrs: _containers.RepeatedCompositeFieldContainer[_mediation_pb2.NormalisedCdr]
    options: RateOptions
    def __init__(self, cdrs: _Optional[_Iterable[_Union[_mediation_pb2.NormalisedCdr, _Mapping]]] = ..., options: _Optional[_Union[RateOptions, _Mapping]] = ...) -> None: ...

class RateCdrsResponse(_message.Message):
    __slots__ = ("rated",)
    RATED_FIELD_NUMBER: _ClassVar[int]
    rated: _containers.RepeatedCompositeFieldContainer[RatedCdr]
    def __init__(self, rated: _Optional[_Iterable[_Union[RatedCdr, _Mapping]]] = ...) -> None: ...

class BundleCounter(_message.Message):
    __slots__ = ("bundle_id", "cycle", "allowance", "remaining", "unit")
    BUNDLE_ID_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    bundle_id: str
    cycle: str
    allowance: int
    remaining: int
    unit: str
    def __init__(self, bundle_id: _Optional[str] = ..., cycle: _Optional[str] = ..., allowance: _Optional[int] = ..., remaining: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class GetBundleCountersRequest(_message.Message):
    __slots__ = ("tenant_id", "msisdn", "cycle")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    msisdn: str
    cycle: str
    def __init__(self, tenant_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., cycle: _Optional[str] = ...) -> None: ...

class GetBundleCountersResponse(_message.Message):
    __slots__ = ("counters", "usage_charged")
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    USAGE_CHARGED_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.RepeatedCompositeFieldContainer[BundleCounter]
    usage_charged: _common_pb2.Money
    def __init__(self, counters: _Optional[_Iterable[_Union[BundleCounter, _Mapping]]] = ..., usage_charged: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class AuthorizeCallRequest(_message.Message):
    __slots__ = ("msisdn", "destination", "service", "roaming", "visited_network", "time")
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ROAMING_FIELD_NUMBER: _ClassVar[int]
    VISITED_NETWORK_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    msisdn: str
    destination: str
    service: _mediation_pb2.CdrServiceKind
    roaming: bool
    visited_network: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, msisdn: _Optional[str] = ..., destination: _Optional[str] = ..., service: _Optional[_Union[_mediation_pb2.CdrServiceKind, str]] = ..., roaming: _Optional[bool] = ..., visited_network: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuthorizeCallResponse(_message.Message):
    __slots__ = ("allowed", "action", "rule_id", "reason", "tenant_id", "tariff_plan", "destination_group", "credit_used", "credit_limit", "barring_flags")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_GROUP_FIELD_NUMBER: _ClassVar[int]
    CREDIT_USED_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BARRING_FLAGS_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    action: str
    rule_id: str
    reason: str
    tenant_id: str
    tariff_plan: str
    destination_group: str
    credit_used: _common_pb2.Money
    credit_limit: _common_pb2.Money
    barring_flags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed: _Optional[bool] = ..., action: _Optional[str] = ..., rule_id: _Optional[str] = ..., reason: _Optional[str] = ..., tenant_id: _Optional[str] = ..., tariff_plan: _Optional[str] = ..., destination_group: _Optional[str] = ..., credit_used: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credit_limit: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., barring_flags: _Optional[_Iterable[str]] = ...) -> None: ...

class CreditAlert(_message.Message):
    __slots__ = ("sequence", "tenant_id", "msisdn", "period", "threshold_id", "percent", "kind", "channel", "recipient", "text", "service", "barring_flag", "fire_time", "credit_used", "credit_limit")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_ID_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    BARRING_FLAG_FIELD_NUMBER: _ClassVar[int]
    FIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREDIT_USED_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    tenant_id: str
    msisdn: str
    period: str
    threshold_id: str
    percent: str
    kind: CreditAlertKind
    channel: str
    recipient: str
    text: str
    service: str
    barring_flag: str
    fire_time: _timestamp_pb2.Timestamp
    credit_used: _common_pb2.Money
    credit_limit: _common_pb2.Money
    def __init__(self, sequence: _Optional[int] = ..., tenant_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., period: _Optional[str] = ..., threshold_id: _Optional[str] = ..., percent: _Optional[str] = ..., kind: _Optional[_Union[CreditAlertKind, str]] = ..., channel: _Optional[str] = ..., recipient: _Optional[str] = ..., text: _Optional[str] = ..., service: _Optional[str] = ..., barring_flag: _Optional[str] = ..., fire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., credit_used: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credit_limit: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class ListCreditAlertsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tenant_id", "msisdn", "period")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tenant_id: str
    msisdn: str
    period: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class ListCreditAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_page_token")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[CreditAlert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[CreditAlert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
