"""The one place where errors become gRPC statuses: domain errors with rich details, anything else with none.

Whatever a status carries goes back in the call's trailing metadata, which the transport limits to a few
kilobytes: a status stays under :data:`MAX_DETAILS_BYTES` of details and :data:`MAX_MESSAGE` characters of
message however much the error would like to say (a longer list says how many entries it left out).

An exception that is not a domain error never reaches the caller with its text (it may hold SQL and its
parameters, paths, anything): the caller gets ``UNAVAILABLE`` when the database cannot be reached, else
``INTERNAL``, each with a correlation id that the server log carries beside the exception.
"""

from __future__ import annotations

import logging
import secrets
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy import exc as sa_exc

from engine.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    clip,
)

log = logging.getLogger("rulebill.errors")
DOMAIN = "rulebill.billing.v1"
MAX_MESSAGE = 500
MAX_DETAILS_BYTES = 3000

_CODES: list[tuple[type[DomainError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT), (NotFound, code_pb2.NOT_FOUND), (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION), (PermissionDenied, code_pb2.PERMISSION_DENIED),
    (Unauthenticated, code_pb2.UNAUTHENTICATED), (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (Cancelled, code_pb2.CANCELLED), (DeadlineExceeded, code_pb2.DEADLINE_EXCEEDED), (Unavailable, code_pb2.UNAVAILABLE),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _bad_request(exc: InvalidArgument) -> error_details_pb2.BadRequest:
    """Every violation while they fit the details budget; then one entry saying how many were left out."""
    out = error_details_pb2.BadRequest()
    budget = MAX_DETAILS_BYTES - 200
    for i, v in enumerate(exc.violations):
        entry = error_details_pb2.BadRequest.FieldViolation(field=clip(v.field, 200), description=clip(v.description, 300))
        budget -= entry.ByteSize() + 4
        if budget < 0:
            out.field_violations.add(field="", description=f"{len(exc.violations) - i} more bad field(s) not listed here")
            break
        out.field_violations.append(entry)
    return out


def to_status(exc: DomainError) -> status_pb2.Status:
    details: list[any_pb2.Any] = []
    code = next((c for kind, c in _CODES if isinstance(exc, kind)), code_pb2.UNKNOWN)
    if isinstance(exc, InvalidArgument):
        details.append(_pack(_bad_request(exc)))
    elif isinstance(exc, (NotFound, AlreadyExists)):
        details.append(_pack(error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=clip(exc.name, 200))))
    elif isinstance(exc, FailedPrecondition):
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[error_details_pb2.PreconditionFailure.Violation(
            type=exc.reason, subject=clip(exc.subject, 200), description=clip(exc.message, 1000))])))
        details.append(_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)))
    return status_pb2.Status(code=code, message=clip(exc.message, MAX_MESSAGE), details=details)


_GRPC_CODES = {c.value[0]: c for c in grpc.StatusCode}


def grpc_code(exc: DomainError) -> grpc.StatusCode:
    return _GRPC_CODES[next((c for kind, c in _CODES if isinstance(exc, kind)), code_pb2.UNKNOWN)]


def abort(context: grpc.ServicerContext, exc: DomainError) -> NoReturn:
    context.abort_with_status(rpc_status.to_status(to_status(exc)))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used now (down, gone, locked, unreadable),
    as opposed to a defect of ours: the first is worth a retry, the second is not."""
    if isinstance(exc, sa_exc.DBAPIError):
        # a bare DatabaseError is the file itself being unusable (SQLite: "file is not a database", "malformed")
        return exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)) \
            or type(exc) is sa_exc.DatabaseError
    return isinstance(exc, sa_exc.TimeoutError)   # the connection pool stayed empty


def driver_cause(exc: BaseException) -> str:
    """The driver's own first line of a database error: what failed, not what ran (the wrapper's text names the
    statement and its parameters, which a log must not get)."""
    cause = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines() or [""]
    return clip(cause[0], 300)


def unexpected(method: str, exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status for an exception that is not a domain error, logged once with a fresh correlation id."""
    correlation = secrets.token_hex(8)
    if database_unreachable(exc):
        log.error("database unavailable in %s [correlation %s]: %s: %s", method, correlation, type(exc).__name__, driver_cause(exc))
        return grpc.StatusCode.UNAVAILABLE, f"the database cannot be reached now; retry later (correlation id {correlation})"
    log.error("internal error in %s [correlation %s]: %s", method, correlation, type(exc).__name__, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (correlation id {correlation}; the server log has the details)"


def abort_unexpected(context: grpc.ServicerContext, method: str, exc: BaseException) -> NoReturn:
    code, message = unexpected(method, exc)
    context.abort(code, message)
    raise AssertionError("abort returned")  # pragma: no cover
