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

class CdrServiceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CDR_SERVICE_KIND_UNSPECIFIED: _ClassVar[CdrServiceKind]
    CDR_SERVICE_KIND_VOICE: _ClassVar[CdrServiceKind]
    CDR_SERVICE_KIND_SMS: _ClassVar[CdrServiceKind]
    CDR_SERVICE_KIND_MMS: _ClassVar[CdrServiceKind]
    CDR_SERVICE_KIND_DATA: _ClassVar[CdrServiceKind]
    CDR_SERVICE_KIND_SUPPLEMENTARY: _ClassVar[CdrServiceKind]

class CdrDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CDR_DIRECTION_UNSPECIFIED: _ClassVar[CdrDirection]
    CDR_DIRECTION_ORIGINATING: _ClassVar[CdrDirection]
    CDR_DIRECTION_TERMINATING: _ClassVar[CdrDirection]
CDR_SERVICE_KIND_UNSPECIFIED: CdrServiceKind
CDR_SERVICE_KIND_VOICE: CdrServiceKind
CDR_SERVICE_KIND_SMS: CdrServiceKind
CDR_SERVICE_KIND_MMS: CdrServiceKind
CDR_SERVICE_KIND_DATA: CdrServiceKind
CDR_SERVICE_KIND_SUPPLEMENTARY: CdrServiceKind
CDR_DIRECTION_UNSPECIFIED: CdrDirection
CDR_DIRECTION_ORIGINATING: CdrDirection
CDR_DIRECTION_TERMINATING: CdrDirection

class MediateFileRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: MediateFileHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[MediateFileHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class MediateFileHeader(_message.Message):
    __slots__ = ("layout", "file_name", "return_cdrs", "rate", "source")
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    RETURN_CDRS_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    layout: str
    file_name: str
    return_cdrs: bool
    rate: bool
    source: str
    def __init__(self, layout: _Optional[str] = ..., file_name: _Optional[str] = ..., return_cdrs: _Optional[bool] = ..., rate: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class MediateFileResponse(_message.Message):
    __slots__ = ("cdrs", "summary")
    CDRS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    cdrs: NormalisedCdrChunk
    summary: FileSummary
    def __init__(self, cdrs: _Optional[_Union[NormalisedCdrChunk, _Mapping]] = ..., summary: _Optional[_Union[FileSummary, _Mapping]] = ...) -> None: ...

class NormalisedCdrChunk(_message.Message):
    __slots__ = ("cdrs",)
    CDRS_FIELD_NUMBER: _ClassVar[int]
    cdrs: _containers.RepeatedCompositeFieldContainer[NormalisedCdr]
    def __init__(self, cdrs: _Optional[_Iterable[_Union[NormalisedCdr, _Mapping]]] = ...) -> None: ...

class NormalisedCdr(_message.Message):
    __slots__ = ("cdr_id", "source", "origin_id", "service", "direction", "start_time", "a_number", "b_number", "imsi", "duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count", "visited_network", "supplementary_code", "charge", "tenant_id", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CDR_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    A_NUMBER_FIELD_NUMBER: _ClassVar[int]
    B_NUMBER_FIELD_NUMBER: _ClassVar[int]
    IMSI_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_UP_BYTES_FIELD_NUMBER: _ClassVar[int]
    VOLUME_DOWN_BYTES_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VISITED_NETWORK_FIELD_NUMBER: _ClassVar[int]
    SUPPLEMENTARY_CODE_FIELD_NUMBER: _ClassVar[int]
    CHARGE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    cdr_id: str
    source: str
    origin_id: str
    service: CdrServiceKind
    direction: CdrDirection
    start_time: _timestamp_pb2.Timestamp
    a_number: str
    b_number: str
    imsi: str
    duration_seconds: int
    volume_up_bytes: int
    volume_down_bytes: int
    event_count: int
    visited_network: str
    supplementary_code: str
    charge: _common_pb2.Money
    tenant_id: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, cdr_id: _Optional[str] = ..., source: _Optional[str] = ..., origin_id: _Optional[str] = ..., service: _Optional[_Union[CdrServiceKind, str]] = ..., direction: _Optional[_Union[CdrDirection, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., a_number: _Optional[str] = ..., b_number: _Optional[str] = ..., imsi: _Optional[str] = ..., duration_seconds: _Optional[int] = ..., volume_up_bytes: _Optional[int] = ..., volume_down_bytes: _Optional[int] = ..., event_count: _Optional[int] = ..., visited_network: _Optional[str] = ..., supplementary_code: _Optional[str] = ..., charge: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tenant_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FileError(_message.Message):
    __slots__ = ("code", "message", "line", "byte_offset")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    BYTE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    line: int
    byte_offset: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., line: _Optional[int] = ..., byte_offset: _Optional[int] = ...) -> None: ...

class FileSummary(_message.Message):
    __slots__ = ("file_id", "file_name", "layout", "tenant_id", "records_in", "normalised", "filtered", "rejected", "duplicates", "aggregated", "header_rows", "blank_lines", "bytes_in", "complete", "already_ingested", "file_error", "rated", "unrated", "content_sha256", "layout_version", "source", "non_billable_legs")
    class FilteredEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RejectedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_IN_FIELD_NUMBER: _ClassVar[int]
    NORMALISED_FIELD_NUMBER: _ClassVar[int]
    FILTERED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    AGGREGATED_FIELD_NUMBER: _ClassVar[int]
    HEADER_ROWS_FIELD_NUMBER: _ClassVar[int]
    BLANK_LINES_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_INGESTED_FIELD_NUMBER: _ClassVar[int]
    FILE_ERROR_FIELD_NUMBER: _ClassVar[int]
    RATED_FIELD_NUMBER: _ClassVar[int]
    UNRATED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    NON_BILLABLE_LEGS_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    file_name: str
    layout: str
    tenant_id: str
    records_in: int
    normalised: int
    filtered: _containers.ScalarMap[str, int]
    rejected: _containers.ScalarMap[str, int]
    duplicates: int
    aggregated: int
    header_rows: int
    blank_lines: int
    bytes_in: int
    complete: bool
    already_ingested: bool
    file_error: FileError
    rated: int
    unrated: int
    content_sha256: str
    layout_version: str
    source: str
    non_billable_legs: int
    def __init__(self, file_id: _Optional[str] = ..., file_name: _Optional[str] = ..., layout: _Optional[str] = ..., tenant_id: _Optional[str] = ..., records_in: _Optional[int] = ..., normalised: _Optional[int] = ..., filtered: _Optional[_Mapping[str, int]] = ..., rejected: _Optional[_Mapping[str, int]] = ..., duplicates: _Optional[int] = ..., aggregated: _Optional[int] = ..., header_rows: _Optional[int] = ..., blank_lines: _Optional[int] = ..., bytes_in: _Optional[int] = ..., complete: _Optional[bool] = ..., already_ingested: _Optional[bool] = ..., file_error: _Optional[_Union[FileError, _Mapping]] = ..., rated: _Optional[int] = ..., unrated: _Optional[int] = ..., content_sha256: _Optional[str] = ..., layout_version: _Optional[str] = ..., source: _Optional[str] = ..., non_billable_legs: _Optional[int] = ...) -> None: ...

class GetFileSummaryRequest(_message.Message):
    __slots__ = ("file_id", "tenant_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    tenant_id: str
    def __init__(self, file_id: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class GetFileSummaryResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: FileSummary
    def __init__(self, summary: _Optional[_Union[FileSummary, _Mapping]] = ...) -> None: ...

class ListRejectsRequest(_message.Message):
    __slots__ = ("file_id", "page_size", "page_token", "tenant_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    page_size: int
    page_token: str
    tenant_id: str
    def __init__(self, file_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_id: _Optional[str] = ...) -> None: ...

class RejectedCdrRecord(_message.Message):
    __slots__ = ("record_no", "line", "byte_offset", "code", "field", "reason", "raw", "raw_truncated")
    RECORD_NO_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    BYTE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    RAW_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    record_no: int
    line: int
    byte_offset: int
    code: str
    field: str
    reason: str
    raw: bytes
    raw_truncated: bool
    def __init__(self, record_no: _Optional[int] = ..., line: _Optional[int] = ..., byte_offset: _Optional[int] = ..., code: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ..., raw: _Optional[bytes] = ..., raw_truncated: _Optional[bool] = ...) -> None: ...

class ListRejectsResponse(_message.Message):
    __slots__ = ("rejects", "next_page_token")
    REJECTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rejects: _containers.RepeatedCompositeFieldContainer[RejectedCdrRecord]
    next_page_token: str
    def __init__(self, rejects: _Optional[_Iterable[_Union[RejectedCdrRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListLayoutsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CdrLayout(_message.Message):
    __slots__ = ("name", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListLayoutsResponse(_message.Message):
    __slots__ = ("layouts",)
    LAYOUTS_FIELD_NUMBER: _ClassVar[int]
    layouts: _containers.RepeatedCompositeFieldContainer[CdrLayout]
    def __init__(self, layouts: _Optional[_Iterable[_Union[CdrLayout, _Mapping]]] = ...) -> None: ...
