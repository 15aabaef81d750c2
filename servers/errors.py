"""The one place where domain errors become gRPC statuses with rich details."""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

log = logging.getLogger("rulebill.errors")
DOMAIN = "rulebill.billing.v1"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(exc: DomainError) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    if isinstance(exc, InvalidArgument):
        code = code_pb2.INVALID_ARGUMENT
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in exc.violations
                    ]
                )
            )
        )
    elif isinstance(exc, NotFound):
        code = code_pb2.NOT_FOUND
        details.append(_pack(error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.name)))
    elif isinstance(exc, AlreadyExists):
        code = code_pb2.ALREADY_EXISTS
        details.append(_pack(error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.name)))
    elif isinstance(exc, FailedPrecondition):
        code = code_pb2.FAILED_PRECONDITION
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[error_details_pb2.PreconditionFailure.Violation(type=exc.reason, subject=exc.subject, description=exc.message)]
                )
            )
        )
        details.append(_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)))
    elif isinstance(exc, PermissionDenied):
        code = code_pb2.PERMISSION_DENIED
    elif isinstance(exc, Unauthenticated):
        code = code_pb2.UNAUTHENTICATED
    elif isinstance(exc, ResourceExhausted):
        code = code_pb2.RESOURCE_EXHAUSTED
    else:
        code = code_pb2.UNKNOWN
    return status_pb2.Status(code=code, message=exc.message, details=details)


def abort(context: grpc.ServicerContext, exc: DomainError) -> NoReturn:
    context.abort_with_status(rpc_status.to_status(to_status(exc)))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def abort_internal(context: grpc.ServicerContext, method: str, exc: BaseException) -> NoReturn:
    # the exception text may hold anything; the client gets no detail, the log gets the type only
    log.error("internal error in %s: %s", method, type(exc).__name__, exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
    raise AssertionError("abort returned")  # pragma: no cover
