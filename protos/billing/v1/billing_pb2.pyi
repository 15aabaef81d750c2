import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from billing.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Delivery(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_UNSPECIFIED: _ClassVar[Delivery]
    DELIVERY_EMAIL: _ClassVar[Delivery]
    DELIVERY_DOWNLOAD: _ClassVar[Delivery]

class AccountStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_STATUS_UNSPECIFIED: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_ACTIVE: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_CLOSED: _ClassVar[AccountStatus]
    ACCOUNT_STATUS_CLOSING: _ClassVar[AccountStatus]

class AddOnState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADD_ON_STATE_UNSPECIFIED: _ClassVar[AddOnState]
    ADD_ON_STATE_ACTIVE: _ClassVar[AddOnState]
    ADD_ON_STATE_EXPIRED: _ClassVar[AddOnState]
    ADD_ON_STATE_CANCELLED: _ClassVar[AddOnState]

class BillRunMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILL_RUN_MODE_UNSPECIFIED: _ClassVar[BillRunMode]
    BILL_RUN_MODE_SCHEDULED: _ClassVar[BillRunMode]
    BILL_RUN_MODE_MANUAL: _ClassVar[BillRunMode]
    BILL_RUN_MODE_ON_DEMAND: _ClassVar[BillRunMode]
    BILL_RUN_MODE_FINAL: _ClassVar[BillRunMode]

class BillRunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BILL_RUN_STATE_UNSPECIFIED: _ClassVar[BillRunState]
    BILL_RUN_STATE_RUNNING: _ClassVar[BillRunState]
    BILL_RUN_STATE_DONE: _ClassVar[BillRunState]
    BILL_RUN_STATE_FAILED: _ClassVar[BillRunState]

class InvoiceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOICE_KIND_UNSPECIFIED: _ClassVar[InvoiceKind]
    INVOICE_KIND_INVOICE: _ClassVar[InvoiceKind]
    INVOICE_KIND_CREDIT_NOTE: _ClassVar[InvoiceKind]

class InvoiceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVOICE_STATE_UNSPECIFIED: _ClassVar[InvoiceState]
    INVOICE_STATE_DRAFT: _ClassVar[InvoiceState]
    INVOICE_STATE_ISSUED: _ClassVar[InvoiceState]
    INVOICE_STATE_PARTIALLY_PAID: _ClassVar[InvoiceState]
    INVOICE_STATE_PAID: _ClassVar[InvoiceState]
    INVOICE_STATE_OVERDUE: _ClassVar[InvoiceState]
    INVOICE_STATE_WRITTEN_OFF: _ClassVar[InvoiceState]
    INVOICE_STATE_CREDITED: _ClassVar[InvoiceState]

class DocumentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DOCUMENT_FORMAT_UNSPECIFIED: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_UBL_XML: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_HTML: _ClassVar[DocumentFormat]
    DOCUMENT_FORMAT_PDF: _ClassVar[DocumentFormat]
DELIVERY_UNSPECIFIED: Delivery
DELIVERY_EMAIL: Delivery
DELIVERY_DOWNLOAD: Delivery
ACCOUNT_STATUS_UNSPECIFIED: AccountStatus
ACCOUNT_STATUS_ACTIVE: AccountStatus
ACCOUNT_STATUS_CLOSED: AccountStatus
ACCOUNT_STATUS_CLOSING: AccountStatus
ADD_ON_STATE_UNSPECIFIED: AddOnState
ADD_ON_STATE_ACTIVE: AddOnState
ADD_ON_STATE_EXPIRED: AddOnState
ADD_ON_STATE_CANCELLED: AddOnState
BILL_RUN_MODE_UNSPECIFIED: BillRunMode
BILL_RUN_MODE_SCHEDULED: BillRunMode
BILL_RUN_MODE_MANUAL: BillRunMode
BILL_RUN_MODE_ON_DEMAND: BillRunMode
BILL_RUN_MODE_FINAL: BillRunMode
BILL_RUN_STATE_UNSPECIFIED: BillRunState
BILL_RUN_STATE_RUNNING: BillRunState
BILL_RUN_STATE_DONE: BillRunState
BILL_RUN_STATE_FAILED: BillRunState
INVOICE_KIND_UNSPECIFIED: InvoiceKind
INVOICE_KIND_INVOICE: InvoiceKind
INVOICE_KIND_CREDIT_NOTE: InvoiceKind
INVOICE_STATE_UNSPECIFIED: InvoiceState
INVOICE_STATE_DRAFT: InvoiceState
INVOICE_STATE_ISSUED: InvoiceState
INVOICE_STATE_PARTIALLY_PAID: InvoiceState
INVOICE_STATE_PAID: InvoiceState
INVOICE_STATE_OVERDUE: InvoiceState
INVOICE_STATE_WRITTEN_OFF: InvoiceState
INVOICE_STATE_CREDITED: InvoiceState
DOCUMENT_FORMAT_UNSPECIFIED: DocumentFormat
DOCUMENT_FORMAT_UBL_XML: DocumentFormat
DOCUMENT_FORMAT_HTML: DocumentFormat
DOCUMENT_FORMAT_PDF: DocumentFormat

class PostalAddress(_message.Message):
    __slots__ = ("lines", "city", "postal_code", "country", "region")
    LINES_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    city: str
    postal_code: str
    country: str
    region: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., city: _Optional[str] = ..., postal_code: _Optional[str] = ..., country: _Optional[str] = ..., region: _Optional[str] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("tenant_id", "account_id", "name", "address", "currency", "anchor_day", "time_zone", "language", "delivery", "email", "vat_id", "company_id", "payment_terms_days", "tax_exemption", "discount_plans", "buyer_reference", "status", "create_time", "update_time", "close_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_DAY_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    VAT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPANY_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_TERMS_DAYS_FIELD_NUMBER: _ClassVar[int]
    TAX_EXEMPTION_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_PLANS_FIELD_NUMBER: _ClassVar[int]
    BUYER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    name: str
    address: PostalAddress
    currency: str
    anchor_day: int
    time_zone: str
    language: str
    delivery: Delivery
    email: str
    vat_id: str
    company_id: str
    payment_terms_days: int
    tax_exemption: str
    discount_plans: _containers.RepeatedScalarFieldContainer[str]
    buyer_reference: str
    status: AccountStatus
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., name: _Optional[str] = ..., address: _Optional[_Union[PostalAddress, _Mapping]] = ..., currency: _Optional[str] = ..., anchor_day: _Optional[int] = ..., time_zone: _Optional[str] = ..., language: _Optional[str] = ..., delivery: _Optional[_Union[Delivery, str]] = ..., email: _Optional[str] = ..., vat_id: _Optional[str] = ..., company_id: _Optional[str] = ..., payment_terms_days: _Optional[int] = ..., tax_exemption: _Optional[str] = ..., discount_plans: _Optional[_Iterable[str]] = ..., buyer_reference: _Optional[str] = ..., status: _Optional[_Union[AccountStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("account_id", "subscriber_id", "msisdn", "valid_from", "valid_to")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    subscriber_id: str
    msisdn: str
    valid_from: _timestamp_pb2.Timestamp
    valid_to: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OneOffCharge(_message.Message):
    __slots__ = ("charge_id", "account_id", "code", "description", "amount", "tax_category", "charge_date", "subscriber_id", "invoice_id")
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TAX_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    charge_id: str
    account_id: str
    code: str
    description: str
    amount: _common_pb2.Money
    tax_category: str
    charge_date: str
    subscriber_id: str
    invoice_id: str
    def __init__(self, charge_id: _Optional[str] = ..., account_id: _Optional[str] = ..., code: _Optional[str] = ..., description: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_category: _Optional[str] = ..., charge_date: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., invoice_id: _Optional[str] = ...) -> None: ...

class CreateAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class CreateAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class UpdateAccountRequest(_message.Message):
    __slots__ = ("account", "update_mask")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    account: Account
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("tenant_id", "account_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account", "assignments")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    account: Account
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ..., assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("tenant_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts", "next_page_token")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[Account]
    next_page_token: str
    def __init__(self, accounts: _Optional[_Iterable[_Union[Account, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AssignSubscriberRequest(_message.Message):
    __slots__ = ("tenant_id", "account_id", "subscriber_id", "valid_from")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    subscriber_id: str
    valid_from: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssignSubscriberResponse(_message.Message):
    __slots__ = ("assignment",)
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ...) -> None: ...

class AddOneOffChargeRequest(_message.Message):
    __slots__ = ("tenant_id", "account_id", "code", "amount", "description", "subscriber_id", "charge_date")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGE_DATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    code: str
    amount: _common_pb2.Money
    description: str
    subscriber_id: str
    charge_date: str
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., code: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., description: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., charge_date: _Optional[str] = ...) -> None: ...

class AddOneOffChargeResponse(_message.Message):
    __slots__ = ("charge",)
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    charge: OneOffCharge
    def __init__(self, charge: _Optional[_Union[OneOffCharge, _Mapping]] = ...) -> None: ...

class BuyAddOnRequest(_message.Message):
    __slots__ = ("subscriber_id", "bundle_id", "request_id")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    bundle_id: str
    request_id: str
    def __init__(self, subscriber_id: _Optional[str] = ..., bundle_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AddOnPurchase(_message.Message):
    __slots__ = ("purchase_id", "subscriber_id", "msisdn", "account_id", "bundle_id", "request_id", "counter_cycle", "valid_from", "valid_until", "allowance", "unit", "fee", "tax_category", "charge_id", "purchase_time", "state", "units_used", "refund_policy", "cancel_time", "cancel_request_id", "refund", "refund_charge_id", "recurrence")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTER_CYCLE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    TAX_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UNITS_USED_FIELD_NUMBER: _ClassVar[int]
    REFUND_POLICY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    REFUND_CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECURRENCE_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    subscriber_id: str
    msisdn: str
    account_id: str
    bundle_id: str
    request_id: str
    counter_cycle: str
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    allowance: int
    unit: str
    fee: _common_pb2.Money
    tax_category: str
    charge_id: str
    purchase_time: _timestamp_pb2.Timestamp
    state: AddOnState
    units_used: int
    refund_policy: str
    cancel_time: _timestamp_pb2.Timestamp
    cancel_request_id: str
    refund: _common_pb2.Money
    refund_charge_id: str
    recurrence: str
    def __init__(self, purchase_id: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., account_id: _Optional[str] = ..., bundle_id: _Optional[str] = ..., request_id: _Optional[str] = ..., counter_cycle: _Optional[str] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., allowance: _Optional[int] = ..., unit: _Optional[str] = ..., fee: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_category: _Optional[str] = ..., charge_id: _Optional[str] = ..., purchase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[AddOnState, str]] = ..., units_used: _Optional[int] = ..., refund_policy: _Optional[str] = ..., cancel_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_request_id: _Optional[str] = ..., refund: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., refund_charge_id: _Optional[str] = ..., recurrence: _Optional[str] = ...) -> None: ...

class ListAddOnsRequest(_message.Message):
    __slots__ = ("subscriber_id", "page_size", "page_token")
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subscriber_id: str
    page_size: int
    page_token: str
    def __init__(self, subscriber_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAddOnsResponse(_message.Message):
    __slots__ = ("purchases", "next_page_token")
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    purchases: _containers.RepeatedCompositeFieldContainer[AddOnPurchase]
    next_page_token: str
    def __init__(self, purchases: _Optional[_Iterable[_Union[AddOnPurchase, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelAddOnRequest(_message.Message):
    __slots__ = ("purchase_id", "request_id")
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    purchase_id: str
    request_id: str
    def __init__(self, purchase_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CancelAddOnResponse(_message.Message):
    __slots__ = ("purchase", "cancelled")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    purchase: AddOnPurchase
    cancelled: bool
    def __init__(self, purchase: _Optional[_Union[AddOnPurchase, _Mapping]] = ..., cancelled: _Optional[bool] = ...) -> None: ...

class BuyAddOnResponse(_message.Message):
    __slots__ = ("purchase", "bought")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    BOUGHT_FIELD_NUMBER: _ClassVar[int]
    purchase: AddOnPurchase
    bought: bool
    def __init__(self, purchase: _Optional[_Union[AddOnPurchase, _Mapping]] = ..., bought: _Optional[bool] = ...) -> None: ...

class BillRunFailure(_message.Message):
    __slots__ = ("account_id", "reason")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    reason: str
    def __init__(self, account_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class BillRun(_message.Message):
    __slots__ = ("run_id", "tenant_id", "mode", "cycle_date", "account_ids", "dry_run", "review", "state", "total", "issued", "drafts", "empty", "skipped", "failed", "failures", "start_time", "end_time", "requested_by")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CYCLE_DATE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    DRAFTS_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    tenant_id: str
    mode: BillRunMode
    cycle_date: str
    account_ids: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    review: bool
    state: BillRunState
    total: int
    issued: int
    drafts: int
    empty: int
    skipped: int
    failed: int
    failures: _containers.RepeatedCompositeFieldContainer[BillRunFailure]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    requested_by: str
    def __init__(self, run_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., mode: _Optional[_Union[BillRunMode, str]] = ..., cycle_date: _Optional[str] = ..., account_ids: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., review: _Optional[bool] = ..., state: _Optional[_Union[BillRunState, str]] = ..., total: _Optional[int] = ..., issued: _Optional[int] = ..., drafts: _Optional[int] = ..., empty: _Optional[int] = ..., skipped: _Optional[int] = ..., failed: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[BillRunFailure, _Mapping]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ...) -> None: ...

class StartBillRunRequest(_message.Message):
    __slots__ = ("tenant_id", "mode", "cycle_date", "account_ids", "dry_run", "review", "resume_run_id", "interim")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CYCLE_DATE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_IDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    RESUME_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INTERIM_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    mode: BillRunMode
    cycle_date: str
    account_ids: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    review: bool
    resume_run_id: str
    interim: bool
    def __init__(self, tenant_id: _Optional[str] = ..., mode: _Optional[_Union[BillRunMode, str]] = ..., cycle_date: _Optional[str] = ..., account_ids: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., review: _Optional[bool] = ..., resume_run_id: _Optional[str] = ..., interim: _Optional[bool] = ...) -> None: ...

class StartBillRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: BillRun
    def __init__(self, run: _Optional[_Union[BillRun, _Mapping]] = ...) -> None: ...

class GetBillRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetBillRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: BillRun
    def __init__(self, run: _Optional[_Union[BillRun, _Mapping]] = ...) -> None: ...

class InvoiceTotals(_message.Message):
    __slots__ = ("line_extension", "allowances", "charges", "tax_exclusive", "tax", "tax_inclusive", "prepaid", "payable")
    LINE_EXTENSION_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCES_FIELD_NUMBER: _ClassVar[int]
    CHARGES_FIELD_NUMBER: _ClassVar[int]
    TAX_EXCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    TAX_INCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    PREPAID_FIELD_NUMBER: _ClassVar[int]
    PAYABLE_FIELD_NUMBER: _ClassVar[int]
    line_extension: _common_pb2.Money
    allowances: _common_pb2.Money
    charges: _common_pb2.Money
    tax_exclusive: _common_pb2.Money
    tax: _common_pb2.Money
    tax_inclusive: _common_pb2.Money
    prepaid: _common_pb2.Money
    payable: _common_pb2.Money
    def __init__(self, line_extension: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., allowances: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., charges: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_exclusive: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_inclusive: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., prepaid: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., payable: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class InvoiceLine(_message.Message):
    __slots__ = ("line_id", "charge_type", "description", "amount", "tax_code", "tax_percent", "tax_category", "subscriber_id", "msisdn", "item_id", "service", "destination", "tariff_plan", "period_start", "period_end", "quantity", "ref_line_id")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    TAX_CODE_FIELD_NUMBER: _ClassVar[int]
    TAX_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TAX_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBER_ID_FIELD_NUMBER: _ClassVar[int]
    MSISDN_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REF_LINE_ID_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    charge_type: str
    description: str
    amount: _common_pb2.Money
    tax_code: str
    tax_percent: str
    tax_category: str
    subscriber_id: str
    msisdn: str
    item_id: str
    service: str
    destination: str
    tariff_plan: str
    period_start: str
    period_end: str
    quantity: int
    ref_line_id: str
    def __init__(self, line_id: _Optional[str] = ..., charge_type: _Optional[str] = ..., description: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_code: _Optional[str] = ..., tax_percent: _Optional[str] = ..., tax_category: _Optional[str] = ..., subscriber_id: _Optional[str] = ..., msisdn: _Optional[str] = ..., item_id: _Optional[str] = ..., service: _Optional[str] = ..., destination: _Optional[str] = ..., tariff_plan: _Optional[str] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., quantity: _Optional[int] = ..., ref_line_id: _Optional[str] = ...) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("invoice_id", "tenant_id", "account_id", "kind", "state", "number", "period_start", "period_end", "currency", "issue_date", "due_date", "totals", "paid", "credited", "run_id", "reference_id", "reason", "lines", "create_time", "issue_time")
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ISSUE_DATE_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    CREDITED_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ISSUE_TIME_FIELD_NUMBER: _ClassVar[int]
    invoice_id: str
    tenant_id: str
    account_id: str
    kind: InvoiceKind
    state: InvoiceState
    number: str
    period_start: str
    period_end: str
    currency: str
    issue_date: str
    due_date: str
    totals: InvoiceTotals
    paid: _common_pb2.Money
    credited: _common_pb2.Money
    run_id: str
    reference_id: str
    reason: str
    lines: _containers.RepeatedCompositeFieldContainer[InvoiceLine]
    create_time: _timestamp_pb2.Timestamp
    issue_time: _timestamp_pb2.Timestamp
    def __init__(self, invoice_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., kind: _Optional[_Union[InvoiceKind, str]] = ..., state: _Optional[_Union[InvoiceState, str]] = ..., number: _Optional[str] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., currency: _Optional[str] = ..., issue_date: _Optional[str] = ..., due_date: _Optional[str] = ..., totals: _Optional[_Union[InvoiceTotals, _Mapping]] = ..., paid: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credited: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., run_id: _Optional[str] = ..., reference_id: _Optional[str] = ..., reason: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[InvoiceLine, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., issue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewBillRequest(_message.Message):
    __slots__ = ("tenant_id", "account_id", "cycle_date")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CYCLE_DATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    cycle_date: str
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., cycle_date: _Optional[str] = ...) -> None: ...

class PreviewBillResponse(_message.Message):
    __slots__ = ("invoice", "ubl_xml", "html")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    UBL_XML_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    ubl_xml: bytes
    html: str
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ..., ubl_xml: _Optional[bytes] = ..., html: _Optional[str] = ...) -> None: ...

class ListInvoicesRequest(_message.Message):
    __slots__ = ("tenant_id", "account_id", "state", "kind", "run_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    account_id: str
    state: InvoiceState
    kind: InvoiceKind
    run_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., account_id: _Optional[str] = ..., state: _Optional[_Union[InvoiceState, str]] = ..., kind: _Optional[_Union[InvoiceKind, str]] = ..., run_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInvoicesResponse(_message.Message):
    __slots__ = ("invoices", "next_page_token")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    next_page_token: str
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetInvoiceRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ...) -> None: ...

class GetInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...

class DownloadInvoiceRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "format", "chunk_size")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    format: DocumentFormat
    chunk_size: int
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., format: _Optional[_Union[DocumentFormat, str]] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class DownloadInvoiceResponse(_message.Message):
    __slots__ = ("chunk", "content_type", "file_name", "total_bytes")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    content_type: str
    file_name: str
    total_bytes: int
    def __init__(self, chunk: _Optional[bytes] = ..., content_type: _Optional[str] = ..., file_name: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class IssueDraftsRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_ids")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_IDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class IssueDraftsResponse(_message.Message):
    __slots__ = ("invoices",)
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ...) -> None: ...

class DiscardDraftRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DiscardDraftResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreditLine(_message.Message):
    __slots__ = ("line_id", "amount")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    amount: _common_pb2.Money
    def __init__(self, line_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class CreateCreditNoteRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "reason", "lines")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    reason: str
    lines: _containers.RepeatedCompositeFieldContainer[CreditLine]
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., reason: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[CreditLine, _Mapping]]] = ...) -> None: ...

class CreateCreditNoteResponse(_message.Message):
    __slots__ = ("credit_note",)
    CREDIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    credit_note: Invoice
    def __init__(self, credit_note: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...

class RebillInvoiceRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RebillInvoiceResponse(_message.Message):
    __slots__ = ("credit_note", "invoice")
    CREDIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    credit_note: Invoice
    invoice: Invoice
    def __init__(self, credit_note: _Optional[_Union[Invoice, _Mapping]] = ..., invoice: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...

class RebillReratedRequest(_message.Message):
    __slots__ = ("tenant_id", "period_start", "period_end", "reason", "dry_run")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    period_start: str
    period_end: str
    reason: str
    dry_run: bool
    def __init__(self, tenant_id: _Optional[str] = ..., period_start: _Optional[str] = ..., period_end: _Optional[str] = ..., reason: _Optional[str] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RebilledInvoice(_message.Message):
    __slots__ = ("replaced", "usage_before", "usage_after", "credit_note", "invoice", "note")
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    USAGE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    USAGE_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREDIT_NOTE_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    replaced: Invoice
    usage_before: _common_pb2.Money
    usage_after: _common_pb2.Money
    credit_note: Invoice
    invoice: Invoice
    note: str
    def __init__(self, replaced: _Optional[_Union[Invoice, _Mapping]] = ..., usage_before: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., usage_after: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., credit_note: _Optional[_Union[Invoice, _Mapping]] = ..., invoice: _Optional[_Union[Invoice, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class RebillReratedResponse(_message.Message):
    __slots__ = ("rebills",)
    REBILLS_FIELD_NUMBER: _ClassVar[int]
    rebills: _containers.RepeatedCompositeFieldContainer[RebilledInvoice]
    def __init__(self, rebills: _Optional[_Iterable[_Union[RebilledInvoice, _Mapping]]] = ...) -> None: ...

class RecordPaymentRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "amount", "reference")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    amount: _common_pb2.Money
    reference: str
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., reference: _Optional[str] = ...) -> None: ...

class RecordPaymentResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...

class WriteOffInvoiceRequest(_message.Message):
    __slots__ = ("tenant_id", "invoice_id", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    invoice_id: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., invoice_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WriteOffInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: Invoice
    def __init__(self, invoice: _Optional[_Union[Invoice, _Mapping]] = ...) -> None: ...
