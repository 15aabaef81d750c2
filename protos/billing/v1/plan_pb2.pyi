import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from billing.v1 import common_pb2 as _common_pb2
from billing.v1 import mediation_pb2 as _mediation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlanChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_CHANGE_KIND_UNSPECIFIED: _ClassVar[PlanChangeKind]
    PLAN_CHANGE_KIND_ADDED: _ClassVar[PlanChangeKind]
    PLAN_CHANGE_KIND_REMOVED: _ClassVar[PlanChangeKind]
    PLAN_CHANGE_KIND_CHANGED: _ClassVar[PlanChangeKind]
PLAN_CHANGE_KIND_UNSPECIFIED: PlanChangeKind
PLAN_CHANGE_KIND_ADDED: PlanChangeKind
PLAN_CHANGE_KIND_REMOVED: PlanChangeKind
PLAN_CHANGE_KIND_CHANGED: PlanChangeKind

class PlanFile(_message.Message):
    __slots__ = ("path", "content")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    path: str
    content: str
    def __init__(self, path: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class PlanProblem(_message.Message):
    __slots__ = ("file", "line", "col", "code", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    col: int
    code: str
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., col: _Optional[int] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PlanSetVersion(_message.Message):
    __slots__ = ("tenant_id", "version", "digest", "create_time", "created_by", "activate_time", "tariff_plans", "file_count", "object_counts")
    class ObjectCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLANS_FIELD_NUMBER: _ClassVar[int]
    FILE_COUNT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    version: int
    digest: str
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    activate_time: _timestamp_pb2.Timestamp
    tariff_plans: _containers.RepeatedScalarFieldContainer[str]
    file_count: int
    object_counts: _containers.ScalarMap[str, int]
    def __init__(self, tenant_id: _Optional[str] = ..., version: _Optional[int] = ..., digest: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., activate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tariff_plans: _Optional[_Iterable[str]] = ..., file_count: _Optional[int] = ..., object_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class UploadPlanSetRequest(_message.Message):
    __slots__ = ("tenant_id", "files")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    files: _containers.RepeatedCompositeFieldContainer[PlanFile]
    def __init__(self, tenant_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[PlanFile, _Mapping]]] = ...) -> None: ...

class UploadPlanSetResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: PlanSetVersion
    def __init__(self, version: _Optional[_Union[PlanSetVersion, _Mapping]] = ...) -> None: ...

class ValidatePlanSetRequest(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[PlanFile]
    def __init__(self, files: _Optional[_Iterable[_Union[PlanFile, _Mapping]]] = ...) -> None: ...

class ValidatePlanSetResponse(_message.Message):
    __slots__ = ("valid", "problems")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[PlanProblem]
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[PlanProblem, _Mapping]]] = ...) -> None: ...

class GetPlanSetVersionRequest(_message.Message):
    __slots__ = ("tenant_id", "version", "include_ir")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_IR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    version: int
    include_ir: bool
    def __init__(self, tenant_id: _Optional[str] = ..., version: _Optional[int] = ..., include_ir: _Optional[bool] = ...) -> None: ...

class GetPlanSetVersionResponse(_message.Message):
    __slots__ = ("version", "ir_json")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IR_JSON_FIELD_NUMBER: _ClassVar[int]
    version: PlanSetVersion
    ir_json: str
    def __init__(self, version: _Optional[_Union[PlanSetVersion, _Mapping]] = ..., ir_json: _Optional[str] = ...) -> None: ...

class ListPlanSetVersionsRequest(_message.Message):
    __slots__ = ("tenant_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPlanSetVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PlanSetVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[PlanSetVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ActivatePlanSetVersionRequest(_message.Message):
    __slots__ = ("tenant_id", "version", "activate_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    version: int
    activate_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., version: _Optional[int] = ..., activate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ActivatePlanSetVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: PlanSetVersion
    def __init__(self, version: _Optional[_Union[PlanSetVersion, _Mapping]] = ...) -> None: ...

class PlanChange(_message.Message):
    __slots__ = ("kind", "id", "change")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    change: PlanChangeKind
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., change: _Optional[_Union[PlanChangeKind, str]] = ...) -> None: ...

class DiffPlanSetVersionsRequest(_message.Message):
    __slots__ = ("tenant_id", "from_version", "to_version")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    from_version: int
    to_version: int
    def __init__(self, tenant_id: _Optional[str] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ...) -> None: ...

class DiffPlanSetVersionsResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[PlanChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[PlanChange, _Mapping]]] = ...) -> None: ...

class PlanAssignment(_message.Message):
    __slots__ = ("key", "tariff_plan")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    key: str
    tariff_plan: str
    def __init__(self, key: _Optional[str] = ..., tariff_plan: _Optional[str] = ...) -> None: ...

class WhatIfRequest(_message.Message):
    __slots__ = ("tenant_id", "candidate_version", "cdrs", "assignments", "default_tariff_plan", "period_start", "period_end")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CDRS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    candidate_version: int
    cdrs: _containers.RepeatedCompositeFieldContainer[_mediation_pb2.NormalisedCdr]
    assignments: _containers.RepeatedCompositeFieldContainer[PlanAssignment]
    default_tariff_plan: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., candidate_version: _Optional[int] = ..., cdrs: _Optional[_Iterable[_Union[_mediation_pb2.NormalisedCdr, _Mapping]]] = ..., assignments: _Optional[_Iterable[_Union[PlanAssignment, _Mapping]]] = ..., default_tariff_plan: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WhatIfLine(_message.Message):
    __slots__ = ("tariff_plan", "service", "cdrs", "active", "candidate", "difference", "active_unrated", "candidate_unrated")
    TARIFF_PLAN_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CDRS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_UNRATED_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_UNRATED_FIELD_NUMBER: _ClassVar[int]
    tariff_plan: str
    service: _mediation_pb2.CdrServiceKind
    cdrs: int
    active: _common_pb2.Money
    candidate: _common_pb2.Money
    difference: _common_pb2.Money
    active_unrated: int
    candidate_unrated: int
    def __init__(self, tariff_plan: _Optional[str] = ..., service: _Optional[_Union[_mediation_pb2.CdrServiceKind, str]] = ..., cdrs: _Optional[int] = ..., active: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., candidate: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., difference: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., active_unrated: _Optional[int] = ..., candidate_unrated: _Optional[int] = ...) -> None: ...

class WhatIfResponse(_message.Message):
    __slots__ = ("active_version", "candidate_version", "lines", "rejected")
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    active_version: int
    candidate_version: int
    lines: _containers.RepeatedCompositeFieldContainer[WhatIfLine]
    rejected: int
    def __init__(self, active_version: _Optional[int] = ..., candidate_version: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[WhatIfLine, _Mapping]]] = ..., rejected: _Optional[int] = ...) -> None: ...
