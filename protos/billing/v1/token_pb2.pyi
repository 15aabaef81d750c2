import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_OPERATOR_ADMIN: _ClassVar[Role]
    ROLE_MVNO_ADMIN: _ClassVar[Role]
    ROLE_CSR: _ClassVar[Role]
    ROLE_PRODUCT_MANAGER: _ClassVar[Role]
    ROLE_AUDITOR: _ClassVar[Role]
    ROLE_SECURITY_OFFICER: _ClassVar[Role]

class TokenApproval(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_APPROVAL_UNSPECIFIED: _ClassVar[TokenApproval]
    TOKEN_APPROVAL_NOT_REQUIRED: _ClassVar[TokenApproval]
    TOKEN_APPROVAL_PENDING: _ClassVar[TokenApproval]
    TOKEN_APPROVAL_APPROVED: _ClassVar[TokenApproval]
    TOKEN_APPROVAL_REJECTED: _ClassVar[TokenApproval]
    TOKEN_APPROVAL_EXPIRED: _ClassVar[TokenApproval]
ROLE_UNSPECIFIED: Role
ROLE_OPERATOR_ADMIN: Role
ROLE_MVNO_ADMIN: Role
ROLE_CSR: Role
ROLE_PRODUCT_MANAGER: Role
ROLE_AUDITOR: Role
ROLE_SECURITY_OFFICER: Role
TOKEN_APPROVAL_UNSPECIFIED: TokenApproval
TOKEN_APPROVAL_NOT_REQUIRED: TokenApproval
TOKEN_APPROVAL_PENDING: TokenApproval
TOKEN_APPROVAL_APPROVED: TokenApproval
TOKEN_APPROVAL_REJECTED: TokenApproval
TOKEN_APPROVAL_EXPIRED: TokenApproval

class TokenInfo(_message.Message):
    __slots__ = ("token_id", "subject", "tenant_id", "role", "create_time", "expire_time", "revoke_time", "privileges", "approval", "issued_by", "issued_by_token_id", "approval_expire_time", "decided_by", "decided_by_token_id", "decide_time")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGES_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    ISSUED_BY_FIELD_NUMBER: _ClassVar[int]
    ISSUED_BY_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    subject: str
    tenant_id: str
    role: Role
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    privileges: _containers.RepeatedScalarFieldContainer[str]
    approval: TokenApproval
    issued_by: str
    issued_by_token_id: str
    approval_expire_time: _timestamp_pb2.Timestamp
    decided_by: str
    decided_by_token_id: str
    decide_time: _timestamp_pb2.Timestamp
    def __init__(self, token_id: _Optional[str] = ..., subject: _Optional[str] = ..., tenant_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., privileges: _Optional[_Iterable[str]] = ..., approval: _Optional[_Union[TokenApproval, str]] = ..., issued_by: _Optional[str] = ..., issued_by_token_id: _Optional[str] = ..., approval_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decided_by: _Optional[str] = ..., decided_by_token_id: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssueTokenRequest(_message.Message):
    __slots__ = ("subject", "tenant_id", "role", "ttl_seconds", "privileges")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGES_FIELD_NUMBER: _ClassVar[int]
    subject: str
    tenant_id: str
    role: Role
    ttl_seconds: int
    privileges: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject: _Optional[str] = ..., tenant_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., ttl_seconds: _Optional[int] = ..., privileges: _Optional[_Iterable[str]] = ...) -> None: ...

class IssueTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    secret: str
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ApproveTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class ApproveTokenResponse(_message.Message):
    __slots__ = ("token", "second_secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECOND_SECRET_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    second_secret: str
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ..., second_secret: _Optional[str] = ...) -> None: ...

class RejectTokenRequest(_message.Message):
    __slots__ = ("token_id", "reason")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    reason: str
    def __init__(self, token_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RejectTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "tenant_id", "include_revoked")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    tenant_id: str
    include_revoked: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ..., include_revoked: _Optional[bool] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: TokenInfo
    def __init__(self, token: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...
