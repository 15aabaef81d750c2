import datetime

from billing.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RerateRequest(_message.Message):
    __slots__ = ("tenant_id", "period_start", "period_end", "plan_set_version")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PLAN_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    period_start: _timestamp_pb2.Timestamp
    period_end: _timestamp_pb2.Timestamp
    plan_set_version: int
    def __init__(self, tenant_id: _Optional[str] = ..., period_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., plan_set_version: _Optional[int] = ...) -> None: ...

class RerateSummary(_message.Message):
    __slots__ = ("cdrs", "rated", "unrated", "rejected", "charged_before", "charged_after", "plan_set_version")
    CDRS_FIELD_NUMBER: _ClassVar[int]
    RATED_FIELD_NUMBER: _ClassVar[int]
    UNRATED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CHARGED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CHARGED_AFTER_FIELD_NUMBER: _ClassVar[int]
    PLAN_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    cdrs: int
    rated: int
    unrated: int
    rejected: int
    charged_before: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    charged_after: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    plan_set_version: int
    def __init__(self, cdrs: _Optional[int] = ..., rated: _Optional[int] = ..., unrated: _Optional[int] = ..., rejected: _Optional[int] = ..., charged_before: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., charged_after: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., plan_set_version: _Optional[int] = ...) -> None: ...

class RerateResponse(_message.Message):
    __slots__ = ("progress", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: RerateProgress
    summary: RerateSummary
    def __init__(self, progress: _Optional[_Union[RerateProgress, _Mapping]] = ..., summary: _Optional[_Union[RerateSummary, _Mapping]] = ...) -> None: ...

class RerateProgress(_message.Message):
    __slots__ = ("done", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...
